package redisstore

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/typedcache/typedcache/internal/testing/testenv"
)

func TestCRC16(t *testing.T) {
	// The check value of CRC-16/XMODEM, quoted in the Redis Cluster spec.
	if got, want := crc16("123456789"), uint16(0x31C3); got != want {
		t.Errorf("crc16(%q) = %#04x; want %#04x", "123456789", got, want)
	}
}

// slotCases are keys with the slot Redis 7 reports for them (CLUSTER
// KEYSLOT), tricky hash tags included.
var slotCases = []struct {
	key  string
	slot int
}{
	{"foo", 12182},
	{"bar", 5061},
	{"hello", 866},
	{"123456789", 12739},
	{"a}b", 7866},           // no '{': the whole key
	{"{}x", 10595},          // empty tag: the whole key
	{"{a}{b}", 15495},       // the first tag: "a"
	{"x{y", 2740},           // no '}' after '{': the whole key
	{"foo{}{bar}", 8363},    // the first '{' has an empty tag: the whole key
	{"foo{{bar}}zap", 4015}, // tag "{bar"
}

func TestKeySlot(t *testing.T) {
	for _, c := range slotCases {
		if got := keySlot(c.key); got != c.slot {
			t.Errorf("keySlot(%q) = %d; want %d", c.key, got, c.slot)
		}
	}
	// Keys sharing a tag share a slot.
	if a, b := keySlot("{user1000}.following"), keySlot("{user1000}.followers"); a != b {
		t.Errorf("keySlot of two keys tagged {user1000}: %d and %d; want equal", a, b)
	}
	if got, want := keySlot("{user1000}.following"), keySlot("user1000"); got != want {
		t.Errorf("keySlot(%q) = %d; want keySlot(%q) = %d", "{user1000}.following", got, "user1000", want)
	}
}

func TestFenceTableComplete(t *testing.T) {
	fenceTableOnce.Do(buildFenceTable) // panics if a slot has no suffix
	for v, digits := range fenceTable {
		s := string(digits[:])
		if strings.Trim(s, hexDigits) != "" {
			t.Fatalf("fenceTable[%d] = %q; want %d hex digits", v, s, fenceDigits)
		}
		if got := int(crc16(s) & slotMask); got != v {
			t.Fatalf("crc16(fenceTable[%d] = %q) & 0x3fff = %d; want %d", v, s, got, v)
		}
	}
}

// fenceKeyCases are keys whose counters are checked: every kind of hash tag
// and non-tag, binary bytes included.
var fenceKeyCases = []string{
	"lock", "ns:lock-lock", "a}b", "}", "{", "{}", "{}x", "x{}", "{a}{b}", "x{y", "x{y}",
	"{x}", "}{", "}{a", "}{a}", "a{{b}}", "{{}}", "foo{}{bar}", "foo{{bar}}zap",
	"\x00", "\xff\xfe{\x00}", "a*[b]?\\:lock", strings.Repeat("k", 1000),
	"lock:fence", "lock:fence:00000",
}

func TestFenceKey(t *testing.T) {
	check := func(key string) {
		t.Helper()
		fk := fenceKey(key)
		if !strings.HasPrefix(fk, key) || fk == key {
			t.Errorf("fenceKey(%q) = %q; want key + a suffix", key, fk)
		}
		if got, want := keySlot(fk), keySlot(key); got != want {
			t.Errorf("keySlot(fenceKey(%q) = %q) = %d; want keySlot(key) = %d", key, fk, got, want)
		}
		_, keyTagged := hashTag(key)
		_, fkTagged := hashTag(fk)
		if keyTagged != fkTagged {
			t.Errorf("fenceKey(%q) = %q: tagged %v; want %v like the key", key, fk, fkTagged, keyTagged)
		}
		if fenceKey(key) != fk {
			t.Errorf("fenceKey(%q) is not deterministic", key)
		}
	}
	for _, key := range fenceKeyCases {
		check(key)
	}
	if got, want := fenceKey("{t}x"), "{t}x:fence"; got != want {
		t.Errorf("fenceKey(%q) = %q; want %q", "{t}x", got, want)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab{}:\x00\xff"
	for range 20000 {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(b))
	}
}

// TestSlotsAgainstCluster checks keySlot and fenceKey against the slots
// the real Cluster reports.
func TestSlotsAgainstCluster(t *testing.T) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)})
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	keys := append([]string{}, fenceKeyCases...)
	for _, sc := range slotCases {
		keys = append(keys, sc.key)
	}
	for _, key := range keys {
		for _, k := range []string{key, fenceKey(key)} {
			got, err := c.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT %q: %v", k, err)
			}
			if want := keySlot(k); int(got) != want {
				t.Errorf("CLUSTER KEYSLOT %q = %d; keySlot says %d", k, got, want)
			}
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"users:", "users:"},
		{`a*[b]?\`, `a\*\[b\]\?\\`},
		{"x^-y", "x^-y"},
	}
	for _, tt := range tests {
		if got := escapeGlob(tt.in); got != tt.want {
			t.Errorf("escapeGlob(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
