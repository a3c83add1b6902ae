package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
	"github.com/typedcache/typedcache/internal/testing/teststores"
)

// Entries on every store: plain writes stay plain (other programs read
// them), bytes that start with the entry magic byte are wrapped and read
// back as they were, an entry that holds only a lease or a "not found" is a
// miss to plain reads (Get, GetMulti, Gets, whose token is then not the
// absent one: a CompareAndSwap with it replaces the lease), corrupt entry
// headers are decode errors, and a Raw cache stores every value as it is.
func TestEntriesOnEveryStore(t *testing.T) {
	teststores.ForEach(t, "entries", func(t *testing.T, b teststores.Backend, s cache.Store, ns string) {
		ctx := context.Background()
		strs := cache.New[string, string](s, &cache.Options[string, string]{Namespace: ns, TTL: time.Minute})
		raw, err := func() ([]byte, error) {
			if err := strs.Set(ctx, "plain", "text"); err != nil {
				return nil, err
			}
			return s.Get(ctx, ns+":plain")
		}()
		if err != nil || string(raw) != "text" {
			t.Fatalf("a plain Set stored %q, %v; want the codec's bytes as they are", raw, err)
		}

		bins := cache.New[string, []byte](s, &cache.Options[string, []byte]{Namespace: ns, TTL: time.Minute})
		magic := []byte{cache.EntryMagic, 0, 1, 2}
		if err := bins.Set(ctx, "magic", magic); err != nil {
			t.Fatal(err)
		}
		if stored, _ := s.Get(ctx, ns+":magic"); len(stored) <= len(magic) {
			t.Fatalf("bytes starting with the magic byte were stored as they are (%x)", stored)
		}
		if got, found, err := bins.Get(ctx, "magic"); !found || err != nil || string(got) != string(magic) {
			t.Fatalf("Get of magic bytes = %x, %v, %v; want them back", got, found, err)
		}

		// A lease-only entry, as memo writes on a miss.
		door := strs.Door()
		key, _ := door.Key("leased")
		lease := cache.Entry[string]{Lease: true, LeaseEnd: time.Now().Add(time.Minute)}
		if err := door.Add(ctx, key, &lease, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, found, err := strs.Get(ctx, "leased"); found || err != nil {
			t.Fatalf("Get of a lease-only entry: found %v, %v; want a miss", found, err)
		}
		if got, err := strs.GetMulti(ctx, []string{"leased"}); len(got) != 0 || err != nil {
			t.Fatalf("GetMulti of a lease-only entry = %v, %v; want a miss", got, err)
		}
		_, found, tok, err := strs.Gets(ctx, "leased")
		if found || err != nil || tok.Absent() {
			t.Fatalf("Gets of a lease-only entry: found %v, absent token %v, %v; want a miss with a present token", found, tok.Absent(), err)
		}
		if err := strs.CompareAndSwap(ctx, "leased", "written", tok); err != nil {
			t.Fatalf("CompareAndSwap over the lease: %v", err)
		}
		if v, _, _ := strs.Get(ctx, "leased"); v != "written" {
			t.Fatalf("after the CompareAndSwap: %q", v)
		}

		// A cached "not found".
		nk, _ := door.Key("none")
		nf := cache.Entry[string]{NotFound: true, FreshUntil: time.Now().Add(time.Minute)}
		if err := door.Add(ctx, nk, &nf, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, found, err := strs.Get(ctx, "none"); found || err != nil {
			t.Fatalf("Get of a not-found entry: found %v, %v; want a miss", found, err)
		}

		// A corrupt header.
		if err := s.Set(ctx, ns+":corrupt", []byte{cache.EntryMagic, 9, 9}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, _, err := strs.Get(ctx, "corrupt"); !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("Get of a corrupt entry: %v; want ErrDecode", err)
		}

		// Raw: every value as it is.
		rawc := cache.New[string, []byte](s, &cache.Options[string, []byte]{Namespace: ns + "-raw", TTL: time.Minute, Raw: true})
		if err := rawc.Set(ctx, "magic", magic); err != nil {
			t.Fatal(err)
		}
		if stored, _ := s.Get(ctx, ns+"-raw:magic"); string(stored) != string(magic) {
			t.Fatalf("a Raw cache stored %x; want %x as it is", stored, magic)
		}
		if got, _, err := rawc.Get(ctx, "magic"); string(got) != string(magic) || err != nil {
			t.Fatalf("Raw Get = %x, %v", got, err)
		}
		if err := rawc.Door().Add(ctx, ns+"-raw:x", &cache.Entry[[]byte]{Lease: true}, time.Minute); !errors.Is(err, cache.ErrRaw) {
			t.Fatalf("an entry written through a Raw cache: %v; want ErrRaw", err)
		}
	})
}
