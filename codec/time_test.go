package codec_test

import (
	"testing"
	"time"

	"github.com/typedcache/typedcache/codec"
)

type event struct {
	At time.Time
}

// TestTimeRoundTrip shows what a time.Time keeps through MsgPack and JSON:
// the instant always; the location, as time.Local, through MsgPack; the
// offset through JSON; the monotonic clock reading through neither.
func TestTimeRoundTrip(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+30*60)
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, ist)
	now := time.Now()
	if now == now.Round(0) {
		t.Fatal("time.Now() has no monotonic clock reading")
	}
	msgpackTime := func(v time.Time) time.Time { return decodeTime(t, codec.MsgPack[time.Time](), v) }
	msgpackField := func(v time.Time) time.Time { return decodeTime(t, codec.MsgPack[event](), event{v}).At }
	jsonTime := func(v time.Time) time.Time { return decodeTime(t, codec.JSON[time.Time](), v) }
	tests := []struct {
		name       string
		roundTrip  func(time.Time) time.Time
		in         time.Time
		wantLoc    *time.Location // nil: any
		wantOffset int            // with wantLoc nil
	}{
		{"MsgPack", msgpackTime, at, time.Local, 0},
		{"MsgPack struct field", msgpackField, at, time.Local, 0},
		{"MsgPack zero", msgpackTime, time.Time{}, time.UTC, 0},
		{"MsgPack now", msgpackTime, now, time.Local, 0},
		{"JSON", jsonTime, at, nil, 5*3600 + 30*60},
		{"JSON now", jsonTime, now, nil, offset(now)},
	}
	for _, tt := range tests {
		got := tt.roundTrip(tt.in)
		if !got.Equal(tt.in) {
			t.Errorf("%s: got %v; want the instant %v", tt.name, got, tt.in)
		}
		if tt.wantLoc != nil && got.Location() != tt.wantLoc {
			t.Errorf("%s: got location %v; want %v", tt.name, got.Location(), tt.wantLoc)
		}
		if tt.wantLoc == nil && offset(got) != tt.wantOffset {
			t.Errorf("%s: got offset %ds; want %ds", tt.name, offset(got), tt.wantOffset)
		}
		if tt.in.IsZero() && got != (time.Time{}) {
			t.Errorf("%s: got %#v; want the zero Time", tt.name, got)
		}
		if got != got.Round(0) {
			t.Errorf("%s: got %v, with a monotonic clock reading; want none", tt.name, got)
		}
	}
}

func decodeTime[V any](t *testing.T, c codec.Codec[V], v V) V {
	t.Helper()
	got, err := c.Decode(mustEnc(c, v))
	if err != nil {
		t.Fatalf("Decode(Encode(%v)): %v", v, err)
	}
	return got
}

func offset(t time.Time) int {
	_, off := t.Zone()
	return off
}
