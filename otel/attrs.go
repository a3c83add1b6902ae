package otel

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/typedcache/typedcache/cache"
	"github.com/typedcache/typedcache/codec"
)

// point is the attribute set of one series, as the options of a
// measurement: built once, so that recording allocates nothing.
type point struct {
	record []metric.RecordOption
	add    []metric.AddOption
}

func newPoint(name string, op cache.Op, layer cache.Layer, result cache.Result, errType string) *point {
	kv := make([]attribute.KeyValue, 0, 5)
	kv = append(kv, AttrName.String(name), AttrOp.String(op.String()))
	if l := layer.String(); l != "" {
		kv = append(kv, AttrLayer.String(l))
	}
	kv = append(kv, AttrResult.String(result.String()))
	if errType != "" {
		kv = append(kv, AttrErrorType.String(errType))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &point{record: []metric.RecordOption{opt}, add: []metric.AddOption{opt}}
}

// Bounds of the table of points of one cache name; events past them (ops
// added later) take the slow path.
const (
	tableOps     = 32
	tableLayers  = 4
	tableResults = 8
)

// attrSets are the points of every series seen, by cache name. A process
// has a few caches, each of which stamps its events with the same string:
// the first names are kept in a list, scanned without a lock (comparing
// strings that share their bytes costs a pointer comparison), the others
// in a map.
type attrSets struct {
	mu    sync.Mutex                  // serializes additions
	names atomic.Pointer[[]*nameSets] // copied on write; at most listedNames
	more  sync.Map                    // cache name -> *nameSets, past listedNames
	count int                         // names kept, guarded by mu
}

const (
	listedNames = 16
	// maxNames bounds the names whose points are kept: past it (cache
	// names made from data, against the advice), points are built for
	// each event.
	maxNames = 1024
)

// nameSets are the points of one cache name: a table indexed by op, layer
// and result (read without a lock), and a map for failures with an
// error.type and for values past the table.
type nameSets struct {
	name  string
	table [tableOps][tableLayers][tableResults]atomic.Pointer[point]
	other sync.Map // pointKey -> *point
}

// forName returns the points of name, adding them the first time; nil
// past maxNames.
func (s *attrSets) forName(name string) *nameSets {
	if ns := s.lookup(name); ns != nil {
		return ns
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns := s.lookup(name); ns != nil {
		return ns
	}
	if s.count >= maxNames {
		return nil
	}
	s.count++
	ns := &nameSets{name: name}
	var list []*nameSets
	if l := s.names.Load(); l != nil {
		list = *l
	}
	if len(list) >= listedNames {
		s.more.Store(name, ns)
		return ns
	}
	list = append(slices.Clip(list), ns)
	s.names.Store(&list)
	return ns
}

func (s *attrSets) lookup(name string) *nameSets {
	if l := s.names.Load(); l != nil {
		for _, ns := range *l {
			if ns.name == name {
				return ns
			}
		}
		if len(*l) < listedNames {
			return nil
		}
	}
	if v, ok := s.more.Load(name); ok {
		return v.(*nameSets)
	}
	return nil
}

type pointKey struct {
	op      cache.Op
	layer   cache.Layer
	result  cache.Result
	errType string
}

// of returns the point of a series, making it the first time.
func (s *attrSets) of(name string, op cache.Op, layer cache.Layer, result cache.Result, errType string) *point {
	ns := s.forName(name)
	if ns == nil {
		return newPoint(name, op, layer, result, errType)
	}
	if errType == "" && int(op) < tableOps && int(layer) < tableLayers && int(result) < tableResults {
		slot := &ns.table[op][layer][result]
		if p := slot.Load(); p != nil {
			return p
		}
		slot.CompareAndSwap(nil, newPoint(name, op, layer, result, ""))
		return slot.Load()
	}
	k := pointKey{op: op, layer: layer, result: result, errType: errType}
	if p, ok := ns.other.Load(k); ok {
		return p.(*point)
	}
	p, _ := ns.other.LoadOrStore(k, newPoint(name, op, layer, result, errType))
	return p.(*point)
}

// errorType returns the error.type of a failed event: the name of the
// typedcache sentinel its error matches, "timeout" or "canceled" for the
// context's errors, else "_OTHER" (OpenTelemetry's fallback); "" for an
// event that did not fail. The set is fixed, so that the attribute stays
// of low cardinality.
func errorType(ev cache.Event) string {
	if ev.Result != cache.ResultError {
		return ""
	}
	err := ev.Err
	switch {
	case err == nil:
		return "_OTHER"
	case errors.Is(err, cache.ErrUncertain):
		return "uncertain"
	case errors.Is(err, cache.ErrNotInvalidated):
		return "not_invalidated"
	case errors.Is(err, cache.ErrExists):
		return "exists"
	case errors.Is(err, cache.ErrConflict):
		return "conflict"
	case errors.Is(err, codec.ErrDecode):
		return "decode"
	case errors.Is(err, codec.ErrEncode):
		return "encode"
	case errors.Is(err, cache.ErrInvalidKey):
		return "invalid_key"
	case errors.Is(err, cache.ErrInvalidTTL):
		return "invalid_ttl"
	case errors.Is(err, cache.ErrNotInteger):
		return "not_integer"
	case errors.Is(err, cache.ErrTooLarge):
		return "too_large"
	case errors.Is(err, cache.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, cache.ErrRaw):
		return "raw"
	case errors.Is(err, cache.ErrClosed):
		return "closed"
	case errors.Is(err, cache.ErrPanic):
		return "panic"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "_OTHER"
}
