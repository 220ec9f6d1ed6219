package esdbemu

import (
	"math"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// A subscription here is one loop over the log: it reads pages of up to 32 records after its
// cursor, sends caught_up the first time it finds nothing, then waits for the next write. The
// cursor only moves forwards, so the catch-up/live handover can neither skip nor repeat an
// event, which is the guarantee the server gives by registering the live subscription before
// its catch-up reads (notes §4). Unlike the server it never falls behind: gRPC flow control
// simply slows it down, so it sends caught_up exactly once.

func confirmation() *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_Confirmation{Confirmation: &streams.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}}
}

// caughtUp builds the caught_up message of servers from v25.1: the server time, and where the
// subscription caught up to (stream_revision for a stream unless it is empty, position for $all
// unless the log is empty). The v4 stubs declare CaughtUp empty, so the fields are encoded as
// unknown fields, which the v4 client ignores and the KurrentDB client reads.
func caughtUp(now time.Time, revision *int64, position *uint64) *streams.ReadResp {
	var ts []byte
	ts = protowire.AppendTag(ts, 1, protowire.VarintType)
	ts = protowire.AppendVarint(ts, uint64(now.Unix()))
	ts = protowire.AppendTag(ts, 2, protowire.VarintType)
	ts = protowire.AppendVarint(ts, uint64(now.Nanosecond()))
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, ts)
	if revision != nil {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(*revision))
	}
	if position != nil {
		var p []byte
		p = protowire.AppendTag(p, 1, protowire.VarintType)
		p = protowire.AppendVarint(p, *position)
		p = protowire.AppendTag(p, 2, protowire.VarintType)
		p = protowire.AppendVarint(p, *position)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	cu := &streams.ReadResp_CaughtUp{}
	cu.ProtoReflect().SetUnknown(b)
	return &streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: cu}}
}

func checkpoint(pos uint64) *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{Checkpoint: &streams.ReadResp_Checkpoint{
		CommitPosition: pos, PreparePosition: pos,
	}}}
}

// wait blocks until the next write, the client's cancel or Close.
func (s *Server) wait(out streams.Streams_ReadServer, changed, kick <-chan struct{}) error {
	select {
	case <-changed:
		return nil
	case <-kick:
		return status.Error(codes.Unavailable, "subscription dropped")
	case <-out.Context().Done():
		return status.FromContextError(out.Context().Err()).Err()
	case <-s.done:
		return status.Error(codes.Unavailable, "server is shutting down")
	}
}

// subscribeStream is a catch-up subscription to one stream, exclusive of its start revision.
func (s *Server) subscribeStream(o *streams.ReadReq_Options_StreamOptions, asString bool, out streams.Streams_ReadServer) error {
	name := string(o.GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	st := s.log.streams[name]
	if st != nil && st.tombstoned {
		s.mu.Unlock()
		return withTrailers(out, streamDeleted(name))
	}
	var next uint64 // the next revision to deliver
	switch r := o.GetRevisionOption().(type) {
	case *streams.ReadReq_Options_StreamOptions_Start:
		next = 0
	case *streams.ReadReq_Options_StreamOptions_Revision:
		next = r.Revision + 1
	default:
		next = uint64(st.last() + 1)
	}
	s.mu.Unlock()
	if err := out.Send(confirmation()); err != nil {
		return err
	}

	sentCaughtUp := false
	for {
		s.mu.Lock()
		st := s.log.streams[name]
		changed, kick := s.changed, s.kick
		var batch []*record
		var tomb *record
		var lastRev *int64
		if st != nil {
			if l := st.last(); l >= 0 && !st.tombstoned {
				lastRev = &l
			}
			live := st.recs
			if st.tombstoned {
				tomb, live = live[len(live)-1], live[:len(live)-1]
			}
			from := max(next, st.tb)
			if st.softDeleted {
				from = uint64(len(live))
			}
			for i := from; i < uint64(len(live)) && len(batch) < pageSize; i++ {
				batch = append(batch, live[i])
			}
		}
		s.mu.Unlock()

		switch {
		case len(batch) > 0:
			for _, r := range batch {
				if err := out.Send(eventResp(r, asString)); err != nil {
					return err
				}
				next = r.revision + 1
			}
		case tomb != nil:
			// A tombstone reaches the subscriber as its $streamDeleted event, then the call fails.
			if err := out.Send(eventResp(tomb, asString)); err != nil {
				return err
			}
			return withTrailers(out, streamDeleted(name))
		case !sentCaughtUp:
			if err := out.Send(caughtUp(s.cfg.now(), lastRev, nil)); err != nil {
				return err
			}
			sentCaughtUp = true
		default:
			if err := s.wait(out, changed, kick); err != nil {
				return err
			}
		}
	}
}

// subscribeAll is a catch-up subscription to $all, exclusive of its start position. A filtered
// one sends checkpoints every f.interval considered events (matching or not), and once at the
// end of catch-up before caught_up.
func (s *Server) subscribeAll(o *streams.ReadReq_Options_AllOptions, f *filter, asString bool, out streams.Streams_ReadServer) error {
	if f != nil && f.interval == 0 {
		return status.Error(codes.InvalidArgument, "checkpoint interval must be positive")
	}
	s.mu.Lock()
	var after uint64 // deliver records strictly after this position
	switch p := o.GetAllOption().(type) {
	case *streams.ReadReq_Options_AllOptions_Start:
		after = 0
	case *streams.ReadReq_Options_AllOptions_Position:
		if err := checkPosition(s.log, p.Position, true); err != nil {
			s.mu.Unlock()
			return err
		}
		after = p.Position.GetCommitPosition()
	default:
		after = s.log.lastPos()
	}
	s.mu.Unlock()
	if err := out.Send(confirmation()); err != nil {
		return err
	}

	sentCaughtUp := false
	var considered, lastCheckpoint uint64
	sendCheckpoint := func(pos uint64) error {
		considered = 0
		if pos <= lastCheckpoint {
			return nil
		}
		lastCheckpoint = pos
		return out.Send(checkpoint(pos))
	}
	for {
		s.mu.Lock()
		changed, kick := s.changed, s.kick
		var batch []*record
		var head *uint64
		if p := s.log.lastPos(); p > 0 {
			head = &p
		}
		if after < math.MaxUint64 {
			i := s.log.search(after + 1)
			batch = append(batch, s.log.recs[i:min(i+pageSize, len(s.log.recs))]...)
		}
		s.mu.Unlock()

		switch {
		case len(batch) > 0:
			for _, r := range batch {
				after = r.pos
				if f == nil || f.match(r) {
					if err := out.Send(eventResp(r, asString)); err != nil {
						return err
					}
				}
				if f == nil {
					continue
				}
				considered++
				if sentCaughtUp && considered >= f.interval {
					if err := sendCheckpoint(r.pos); err != nil {
						return err
					}
				}
			}
			if f != nil && !sentCaughtUp && considered >= f.interval {
				if err := sendCheckpoint(after); err != nil {
					return err
				}
			}
		case !sentCaughtUp:
			if f != nil && after > 0 {
				if err := sendCheckpoint(after); err != nil {
					return err
				}
			}
			if err := out.Send(caughtUp(s.cfg.now(), nil, head)); err != nil {
				return err
			}
			sentCaughtUp = true
		default:
			if err := s.wait(out, changed, kick); err != nil {
				return err
			}
		}
	}
}
