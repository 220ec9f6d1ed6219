package esdbemu

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf16"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const contentTypeJSON = "application/json"

// proposed is one validated proposed message of an append.
type proposed struct {
	id     uuid.UUID
	typ    string
	isJSON bool
	data   []byte
	meta   []byte
}

// Append implements the client-streaming append (notes §1). The first message must be the
// options; every proposed message is validated as it arrives; the commit happens on half-close.
func (s *Server) Append(stream streams.Streams_AppendServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.Unknown, "the first append message must be the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "stream name is empty")
	}
	expected := expectedFromAppend(opts)

	var batch []proposed
	size := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.Unknown, "expected a proposed message after the options")
		}
		p, err := parseProposed(pm)
		if err != nil {
			return withTrailers(stream, err)
		}
		size += len(p.data) + len(p.meta) + 2*len(utf16.Encode([]rune(p.typ)))
		if size > s.cfg.maxAppendSize {
			return trailerError(stream, codes.InvalidArgument, "maximum append size exceeded",
				"exception", "maximum-append-size-exceeded",
				"maximum-append-size", strconv.Itoa(s.cfg.maxAppendSize))
		}
		batch = append(batch, p)
	}

	resp, err := s.appendBatch(name, expected, batch)
	if err != nil {
		return withTrailers(stream, err)
	}
	return stream.SendAndClose(resp)
}

func expectedFromAppend(o *streams.AppendReq_Options) int64 {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.AppendReq_Options_Revision:
		return int64(v.Revision)
	case *streams.AppendReq_Options_NoStream:
		return expectNoStream
	case *streams.AppendReq_Options_StreamExists:
		return expectStreamExists
	}
	return expectAny
}

func parseProposed(pm *streams.AppendReq_ProposedMessage) (proposed, error) {
	typ, okType := pm.GetMetadata()["type"]
	ct, okCT := pm.GetMetadata()["content-type"]
	if !okType || !okCT {
		return proposed{}, &trailered{
			st: status.New(codes.InvalidArgument, "missing required metadata property"),
			md: metadata.Pairs("exception", "missing-required-metadata-property",
				"required-metadata-properties", "type,content-type"),
		}
	}
	id, err := uuidFromProto(pm.GetId())
	if err != nil {
		return proposed{}, status.Errorf(codes.InvalidArgument, "event id: %v", err)
	}
	return proposed{
		id:     id,
		typ:    typ,
		isJSON: ct == contentTypeJSON,
		data:   clone(pm.GetData()),
		meta:   clone(pm.GetCustomMetadata()),
	}, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

func uuidFromProto(u *shared.UUID) (uuid.UUID, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var id uuid.UUID
		most, least := uint64(v.Structured.GetMostSignificantBits()), uint64(v.Structured.GetLeastSignificantBits())
		for i := range 8 {
			id[i] = byte(most >> (56 - 8*i))
			id[8+i] = byte(least >> (56 - 8*i))
		}
		return id, nil
	case *shared.UUID_String_:
		return uuid.Parse(v.String_)
	}
	return uuid.UUID{}, errors.New("missing")
}

func uuidToProto(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	var most, least uint64
	for i := range 8 {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: int64(most), LeastSignificantBits: int64(least),
	}}}
}

// appendBatch decides and commits one append under the lock, following IndexWriter.CheckCommit
// (notes §1). A wrong expected version is an in-band response, not an error.
func (s *Server) appendBatch(name string, expected int64, batch []proposed) (*streams.AppendResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log
	st := l.streams[name]
	cur := st.last()

	if st != nil && st.tombstoned && len(batch) > 0 {
		return nil, streamDeleted(name)
	}
	if st != nil && st.softDeleted && expected == expectStreamExists {
		return nil, streamDeleted(name)
	}

	switch expected {
	case expectAny, expectStreamExists:
		if expected == expectStreamExists && !l.existed(name) {
			return wrongExpected(expected, cur), nil
		}
		// Weak idempotency: only the first id decides whether this is a resend.
		if len(batch) > 0 && st != nil && st.ids[batch[0].id] != nil {
			var lastMatch *record
			for _, p := range batch {
				r := st.ids[p.id]
				if r == nil {
					return wrongExpected(expected, cur), nil
				}
				lastMatch = r
			}
			return idempotentSuccess(st, lastMatch), nil
		}
	default:
		if expected == expectNoStream && st != nil && st.softDeleted {
			// A soft-deleted stream takes a no_stream append and continues its revisions.
			expected = cur
		}
		if expected < cur {
			// Strong idempotency: the ids must match the stored events after expected.
			if len(batch) == 0 {
				return wrongExpected(expected, cur), nil
			}
			var lastMatch *record
			for i, p := range batch {
				rev := expected + 1 + int64(i)
				if rev > cur || st.recs[rev].id != p.id {
					return wrongExpected(expected, cur), nil
				}
				lastMatch = st.recs[rev]
			}
			return idempotentSuccess(st, lastMatch), nil
		}
		if expected > cur {
			return wrongExpected(expected, cur), nil
		}
	}

	if len(batch) == 0 {
		succ := &streams.AppendResp_Success{PositionOption: &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}}
		if cur < 0 {
			succ.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			succ.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(cur)}
		}
		return &streams.AppendResp{Result: &streams.AppendResp_Success_{Success: succ}}, nil
	}

	now := s.cfg.now().UTC().UnixNano() / 100
	if st != nil && st.softDeleted {
		// Reviving a soft-deleted stream moves its truncate-before to the first new revision
		// (StorageWriterService), recorded as a $metadata event on $$stream.
		s.writeMetadataLocked(name, uint64(cur+1), now)
		st.softDeleted = false
		st.tb = uint64(cur + 1)
	}
	var last *record
	for i, p := range batch {
		last = &record{
			stream:   name,
			revision: uint64(cur + 1 + int64(i)),
			id:       p.id,
			typ:      p.typ,
			isJSON:   p.isJSON,
			data:     p.data,
			meta:     p.meta,
			created:  now,
		}
		l.write(last)
	}
	s.commitLocked()
	return &streams.AppendResp{Result: &streams.AppendResp_Success_{Success: &streams.AppendResp_Success{
		CurrentRevisionOption: &streams.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption: &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{
			CommitPosition: last.pos, PreparePosition: last.pos,
		}},
	}}}, nil
}

// writeMetadataLocked writes the $metadata event setting $tb on $$name.
func (s *Server) writeMetadataLocked(name string, tb uint64, created int64) *record {
	meta := s.log.stream("$$" + name)
	r := &record{
		stream:   "$$" + name,
		revision: uint64(meta.last() + 1),
		id:       uuid.New(),
		typ:      "$metadata",
		isJSON:   true,
		data:     []byte(fmt.Sprintf(`{"$tb":%d}`, tb)),
		meta:     []byte{},
		created:  created,
	}
	s.log.write(r)
	return r
}

func idempotentSuccess(st *stream, r *record) *streams.AppendResp {
	succ := &streams.AppendResp_Success{
		CurrentRevisionOption: &streams.AppendResp_Success_CurrentRevision{CurrentRevision: r.revision},
	}
	if st.readable(r) {
		succ.PositionOption = &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{
			CommitPosition: r.pos, PreparePosition: r.pos,
		}}
	} else {
		succ.PositionOption = &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_Success_{Success: succ}}
}

// wrongExpected builds the in-band WrongExpectedVersion, filling both the current and the
// legacy 20.6.0 field families as the server does.
func wrongExpected(expected, cur int64) *streams.AppendResp {
	w := &streams.AppendResp_WrongExpectedVersion{}
	switch expected {
	case expectAny:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case expectStreamExists:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	case expectNoStream:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: math.MaxUint64}
	default:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(expected)}
	}
	if cur < 0 {
		w.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(cur)}
		w.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(cur)}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// trailered is a gRPC status whose details travel in trailers, where the v4 client looks
// (impl.go handleError reads only grpc.Trailer).
type trailered struct {
	st *status.Status
	md metadata.MD
}

func (e *trailered) Error() string              { return e.st.Err().Error() }
func (e *trailered) GRPCStatus() *status.Status { return e.st }

func streamDeleted(name string) error {
	return &trailered{
		st: status.New(codes.FailedPrecondition, fmt.Sprintf("stream '%s' is deleted", name)),
		md: metadata.Pairs("exception", "stream-deleted", "stream-name", name),
	}
}

func trailerError(stream grpc.ServerStream, code codes.Code, msg string, kv ...string) error {
	stream.SetTrailer(metadata.Pairs(kv...))
	return status.Error(code, msg)
}

// withTrailers moves a trailered error's keys into the stream's trailers.
func withTrailers(stream grpc.ServerStream, err error) error {
	var t *trailered
	if errors.As(err, &t) {
		stream.SetTrailer(t.md)
		return t.st.Err()
	}
	return err
}
