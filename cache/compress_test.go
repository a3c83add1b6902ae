package cache_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
)

// doc is a JSON-like struct of about 10 KiB once encoded.
type doc struct {
	ID    int
	Title string
	Tags  []string
	Body  []para
}

type para struct {
	Heading string
	Text    string
	Score   float64
}

func bigDoc() doc {
	d := doc{ID: 7, Title: "Caching at scale", Tags: []string{"go", "redis", "cache"}}
	for i := range 40 {
		d.Body = append(d.Body, para{
			Heading: "Section " + strings.Repeat("x", i%7),
			Text:    strings.Repeat("read-through caches keep hot data close to the service; ", 4),
			Score:   float64(i) / 3,
		})
	}
	return d
}

func TestCompression(t *testing.T) {
	ctx := context.Background()
	for _, comp := range []codec.Compressor{codec.S2(), codec.Zstd()} {
		store := newStore(t)
		c := cache.New[string, doc](store, &cache.Options[string, doc]{
			Namespace:   "n",
			Compression: &cache.Compression{Compressor: comp},
		})
		d := bigDoc()
		plain, err := codec.MsgPack[doc]().Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, "big", d); err != nil {
			t.Fatal(err)
		}
		raw, err := store.Get(ctx, "n:big")
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] != cache.EntryMagic || len(raw) >= len(plain)/2 {
			t.Errorf("compressor %d: stored %d bytes starting % x; want a compressed entry of under half the %d of the encoding", comp.ID(), len(raw), raw[:1], len(plain))
		}
		got, found, err := c.Get(ctx, "big")
		if err != nil || !found || got.Title != d.Title || len(got.Body) != len(d.Body) {
			t.Fatalf("compressor %d: Get = %v, %v; want the document", comp.ID(), found, err)
		}
		// A cache without the option reads it all the same.
		reader := cache.New[string, doc](store, &cache.Options[string, doc]{Namespace: "n"})
		if got, found, err := reader.Get(ctx, "big"); err != nil || !found || got.ID != d.ID {
			t.Fatalf("compressor %d: Get through a cache without Compression = %v, %v", comp.ID(), found, err)
		}
		// Small values stay plain, for other readers.
		small := doc{ID: 1, Title: "x"}
		if err := c.Set(ctx, "small", small); err != nil {
			t.Fatal(err)
		}
		if raw, _ := store.Get(ctx, "n:small"); raw[0] == cache.EntryMagic {
			t.Errorf("compressor %d: a small value was written as an entry", comp.ID())
		}
		// CompareAndSwap and Gets.
		_, _, tok, err := c.Gets(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		d.ID = 8
		if err := c.CompareAndSwap(ctx, "big", d, tok); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := c.Get(ctx, "big"); got.ID != 8 {
			t.Fatalf("compressor %d: after CompareAndSwap: ID %d; want 8", comp.ID(), got.ID)
		}
	}
}

// A compressed value that would decompress past MaxDecompressed fails to
// decode instead of being allocated.
func TestCompressionMaxDecompressed(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	w := cache.New[string, []byte](store, &cache.Options[string, []byte]{Compression: &cache.Compression{}})
	if err := w.Set(ctx, "zeros", make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	r := cache.New[string, []byte](store, &cache.Options[string, []byte]{Compression: &cache.Compression{MaxDecompressed: 1 << 20}})
	if _, _, err := r.Get(ctx, "zeros"); !errors.Is(err, codec.ErrDecode) {
		t.Fatalf("Get of 4 MiB under a 1 MiB limit: got %v; want ErrDecode", err)
	}
	if v, found, err := w.Get(ctx, "zeros"); err != nil || !found || len(v) != 4<<20 {
		t.Fatalf("Get under the default limit: %d bytes, %v, %v", len(v), found, err)
	}
}

func TestCompressionRawPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New with Raw and Compression did not panic")
		}
	}()
	cache.New[string, string](newStore(t), &cache.Options[string, string]{Raw: true, Compression: &cache.Compression{}})
}
