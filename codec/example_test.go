package codec_test

import (
	"errors"
	"fmt"

	"github.com/typedcache/typedcache/codec"
)

func Example() {
	type point struct{ X, Y int }
	c := codec.Default[point]() // MsgPack for a struct
	data, _ := c.Encode(point{1, 2})
	p, _ := c.Decode(data)
	fmt.Println(p)

	_, err := c.Decode([]byte("not msgpack"))
	fmt.Println(errors.Is(err, codec.ErrDecode))
	// Output:
	// {1 2}
	// true
}

func ExampleInt() {
	c := codec.Int[int64]()
	data, _ := c.Encode(-42)
	fmt.Println(string(data))
	// Output: -42
}

func ExampleJSON() {
	c := codec.JSON[map[string]int]()
	data, _ := c.Encode(map[string]int{"a": 1})
	fmt.Println(string(data))
	// Output: {"a":1}
}

func ExampleFuncs() {
	upper := codec.Funcs(
		func(s string) ([]byte, error) { return []byte(s), nil },
		func(b []byte) (string, error) {
			if len(b) == 0 {
				return "", errors.New("empty")
			}
			return string(b), nil
		},
	)
	_, err := upper.Decode(nil)
	fmt.Println(errors.Is(err, codec.ErrDecode))
	// Output: true
}
