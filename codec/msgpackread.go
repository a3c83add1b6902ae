package codec

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// msgpackReader is the io.Reader and io.ByteScanner the msgpack decoder
// reads a checked value from: a bytes.Reader that refuses the reads its
// guards name (see checkMsgpack), so that the decoder never takes the
// payload of an extension for MessagePack.
type msgpackReader struct {
	data   []byte
	pos    int
	guards []msgpackGuard // by position
	g      int            // guards[:g] are before pos
	next   int            // guards[g].at, or math.MaxInt
}

// reset makes r read data with guards.
func (r *msgpackReader) reset(data []byte, guards []msgpackGuard) {
	r.data, r.pos, r.guards, r.g = data, 0, guards, 0
	r.next = math.MaxInt
	if len(guards) > 0 {
		r.next = guards[0].at
	}
}

// Read reads as bytes.Reader.Read does.
func (r *msgpackReader) Read(b []byte) (int, error) {
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	if r.pos >= r.next {
		if err := r.guard(true); err != nil {
			return 0, err
		}
	}
	n := copy(b, r.data[r.pos:])
	r.pos += n
	return n, nil
}

// ReadByte reads as bytes.Reader.ReadByte does.
func (r *msgpackReader) ReadByte() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	if r.pos >= r.next {
		if err := r.guard(false); err != nil {
			return 0, err
		}
	}
	c := r.data[r.pos]
	r.pos++
	return c, nil
}

// UnreadByte steps back one byte, as bytes.Reader.UnreadByte does.
func (r *msgpackReader) UnreadByte() error {
	if r.pos <= 0 {
		return errors.New("codec: UnreadByte at beginning of value")
	}
	r.pos--
	for r.g > 0 && r.guards[r.g-1].at >= r.pos {
		r.g--
		r.next = r.guards[r.g].at
	}
	return nil
}

// guard moves to the first guard at or after pos and fails if it refuses a
// read (read: Read, else ReadByte) at pos.
func (r *msgpackReader) guard(read bool) error {
	for r.g < len(r.guards) && r.guards[r.g].at < r.pos {
		r.g++
	}
	r.next = math.MaxInt
	if r.g == len(r.guards) {
		return nil
	}
	gd := r.guards[r.g]
	r.next = gd.at
	if gd.at == r.pos && gd.read == read {
		if read {
			return fmt.Errorf("length read after the index of an interned string, at byte %d", r.pos)
		}
		return fmt.Errorf("extension payload read as MessagePack at byte %d", r.pos)
	}
	return nil
}
