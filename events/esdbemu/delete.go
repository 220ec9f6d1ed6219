package esdbemu

import (
	"context"
	"fmt"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Delete soft-deletes a stream (notes §5): it writes $metadata {"$tb": i64 max} to $$stream;
// reads then report not found, $all keeps the old events, and a later append revives it.
func (s *Server) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	o := req.GetOptions()
	name := string(o.GetStreamIdentifier().GetStreamName())
	expected := expectAny
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.DeleteReq_Options_Revision:
		expected = int64(v.Revision)
	case *streams.DeleteReq_Options_NoStream:
		expected = expectNoStream
	case *streams.DeleteReq_Options_StreamExists:
		expected = expectStreamExists
	}
	pos, err := s.deleteStream(name, expected, false)
	if err != nil {
		return nil, sendTrailers(ctx, err)
	}
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{Position: &streams.DeleteResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// Tombstone deletes a stream for good by writing its $streamDeleted record (notes §5).
func (s *Server) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	o := req.GetOptions()
	name := string(o.GetStreamIdentifier().GetStreamName())
	expected := expectAny
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.TombstoneReq_Options_Revision:
		expected = int64(v.Revision)
	case *streams.TombstoneReq_Options_NoStream:
		expected = expectNoStream
	case *streams.TombstoneReq_Options_StreamExists:
		expected = expectStreamExists
	}
	pos, err := s.deleteStream(name, expected, true)
	if err != nil {
		return nil, sendTrailers(ctx, err)
	}
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{Position: &streams.TombstoneResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// deleteStream is the work of Delete and Tombstone once the request is parsed: the checks under
// the lock, then the record that deletes the stream (with tombstone, its $streamDeleted record for
// good; without, the $tb metadata a later append lifts). It returns that record's position, or
// the error to send with its trailers.
func (s *Server) deleteStream(name string, expected int64, tombstone bool) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.log.streams[name]
	if st != nil && st.tombstoned {
		return 0, streamDeleted(name)
	}
	if !tombstone {
		if st != nil && st.softDeleted && expected == expectStreamExists {
			return 0, streamDeleted(name)
		}
		// The stream must have existed, even for any (server test DeleteNoStream).
		if !s.log.existed(name) {
			return 0, deleteWrongExpected(name, expected, st.last())
		}
	}
	if !deleteExpectationHolds(expected, st.last()) {
		return 0, deleteWrongExpected(name, expected, st.last())
	}
	created := s.cfg.now().UTC().UnixNano() / 100
	var r *record
	if tombstone {
		r = &record{stream: name, revision: tombstoneRevision, id: uuid.New(), typ: "$streamDeleted", isJSON: true,
			data: []byte{}, meta: []byte{}, created: created}
		s.log.write(r)
		s.log.stream(name).tombstoned = true
	} else {
		r = s.writeMetadataLocked(name, tombstoneRevision, created)
		s.log.stream(name).softDeleted = true
	}
	s.commitLocked()
	return r.pos, nil
}

// deleteExpectationHolds applies CheckCommit's rules without idempotency: a delete uses a fresh
// record id, so it is never a resend.
func deleteExpectationHolds(expected, cur int64) bool {
	switch expected {
	case expectAny:
		return true
	case expectStreamExists:
		return cur >= 0
	}
	return expected == cur
}

// deleteWrongExpected is the out-of-band WEV of delete and tombstone: FailedPrecondition with
// the expected and actual versions as trailers (RpcExceptions.WrongExpectedVersion).
func deleteWrongExpected(name string, expected, cur int64) error {
	return &trailered{
		st: status.New(codes.FailedPrecondition, fmt.Sprintf("wrong expected version for stream '%s'", name)),
		md: metadata.Pairs("exception", "wrong-expected-version", "stream-name", name,
			"expected-version", strconv.FormatInt(expected, 10), "actual-version", strconv.FormatInt(cur, 10)),
	}
}

// sendTrailers sets a trailered error's keys as the unary call's trailers.
func sendTrailers(ctx context.Context, err error) error {
	if t, ok := err.(*trailered); ok {
		_ = grpc.SetTrailer(ctx, t.md)
		return t.st.Err()
	}
	return err
}
