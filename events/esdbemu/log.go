package esdbemu

import (
	"math"
	"sort"
	"unicode/utf16"

	"github.com/google/uuid"
)

// The internal expected-version codes of the server (IndexWriter.CheckCommit), also sent as the
// expected-version trailer of a delete's wrong-expected-version error.
const (
	expectAny          int64 = -2
	expectNoStream     int64 = -1
	expectStreamExists int64 = -4
)

// tombstoneRevision is the revision of the $streamDeleted record a tombstone writes.
const tombstoneRevision = math.MaxInt64

// firstPosition is where the emulated transaction log starts: a real node's $all never has a
// user event at 0, and adapters may treat 0 as "the start".
const firstPosition = 1 << 10

// record is one event in the emulated transaction log.
type record struct {
	stream   string
	revision uint64
	id       uuid.UUID
	typ      string
	isJSON   bool
	data     []byte
	meta     []byte
	created  int64 // 100-ns ticks since the Unix epoch
	pos      uint64
}

// stream is the emulated index entry of one stream.
type stream struct {
	recs       []*record // every event of the stream, including truncated ones
	ids        map[uuid.UUID]*record
	tombstoned bool
	// tb is the truncate-before revision ($tb of the stream's metadata); reads skip revisions
	// below it. softDeleted means $tb is i64 max: the stream reads as not found.
	tb          uint64
	softDeleted bool
}

// last returns the stream's last event number, -1 when it has none.
func (s *stream) last() int64 {
	if s == nil || len(s.recs) == 0 {
		return -1
	}
	if s.tombstoned {
		return tombstoneRevision
	}
	return int64(s.recs[len(s.recs)-1].revision)
}

// readable reports whether r can still be read from its stream (not truncated or deleted).
func (s *stream) readable(r *record) bool {
	return !s.softDeleted && !s.tombstoned && r.revision >= s.tb
}

// eventLog is the whole emulated database: the transaction log and its stream index. It is
// guarded by Server.mu.
type eventLog struct {
	recs    []*record
	streams map[string]*stream
	nextPos uint64
}

func newEventLog() *eventLog {
	return &eventLog{streams: map[string]*stream{}, nextPos: firstPosition}
}

func (l *eventLog) stream(name string) *stream {
	s := l.streams[name]
	if s == nil {
		s = &stream{ids: map[uuid.UUID]*record{}}
		l.streams[name] = s
	}
	return s
}

// existed reports whether the stream was ever written: events or metadata.
func (l *eventLog) existed(name string) bool {
	if s := l.streams[name]; s != nil && len(s.recs) > 0 {
		return true
	}
	m := l.streams["$$"+name]
	return m != nil && len(m.recs) > 0
}

// write appends one record to the log and its stream, assigning its position. The position
// grows by the record's size, like the byte offset of a real transaction log.
func (l *eventLog) write(r *record) {
	r.pos = l.nextPos
	l.nextPos += 64 + uint64(len(r.stream)+len(r.data)+len(r.meta)+2*len(utf16.Encode([]rune(r.typ))))
	l.recs = append(l.recs, r)
	s := l.stream(r.stream)
	s.recs = append(s.recs, r)
	s.ids[r.id] = r
}

// lastPos returns the position of the newest record, 0 when the log is empty.
func (l *eventLog) lastPos() uint64 {
	if len(l.recs) == 0 {
		return 0
	}
	return l.recs[len(l.recs)-1].pos
}

// search returns the index of the first record at or after pos.
func (l *eventLog) search(pos uint64) int {
	return sort.Search(len(l.recs), func(i int) bool { return l.recs[i].pos >= pos })
}

// isBoundary reports whether pos is a place a read of $all may start from: the start, a record
// position, or anywhere past the end.
func (l *eventLog) isBoundary(pos uint64) bool {
	if pos == 0 || pos > l.lastPos() {
		return true
	}
	i := l.search(pos)
	return i < len(l.recs) && l.recs[i].pos == pos
}
