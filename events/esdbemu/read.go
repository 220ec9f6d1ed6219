package esdbemu

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pageSize is the server's internal read page and live-buffer size.
const pageSize = 32

// Read serves stream reads, $all reads and catch-up subscriptions (notes §2-§4).
func (s *Server) Read(req *streams.ReadReq, out streams.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read options are missing")
	}
	asString := o.GetUuidOption().GetString_() != nil
	backwards := o.GetReadDirection() == streams.ReadReq_Options_Backwards
	var f *filter
	if fo := o.GetFilter(); fo != nil {
		var err error
		if f, err = parseFilter(fo); err != nil {
			return err
		}
	}

	if o.GetSubscription() != nil {
		if backwards {
			return status.Error(codes.InvalidArgument, "subscriptions read forwards only")
		}
		if so := o.GetStream(); so != nil {
			return s.subscribeStream(so, asString, out)
		}
		if ao := o.GetAll(); ao != nil {
			return s.subscribeAll(ao, f, asString, out)
		}
		return status.Error(codes.InvalidArgument, "stream or $all options are missing")
	}

	count := o.GetCount()
	if count == 0 {
		return status.Error(codes.InvalidArgument, "count must be positive")
	}
	if so := o.GetStream(); so != nil {
		return s.readStream(so, backwards, count, asString, out)
	}
	if ao := o.GetAll(); ao != nil {
		return s.readAll(ao, backwards, count, f, asString, out)
	}
	return status.Error(codes.InvalidArgument, "stream or $all options are missing")
}

// readStream reads one stream, inclusive of the start revision. A missing or soft-deleted
// stream gives one in-band stream_not_found; a tombstoned one fails with stream-deleted.
func (s *Server) readStream(o *streams.ReadReq_Options_StreamOptions, backwards bool, count uint64, asString bool, out streams.Streams_ReadServer) error {
	name := string(o.GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	st := s.log.streams[name]
	if st != nil && st.tombstoned {
		s.mu.Unlock()
		return withTrailers(out, streamDeleted(name))
	}
	if st == nil || len(st.recs) == 0 || st.softDeleted {
		s.mu.Unlock()
		return out.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{StreamNotFound: &streams.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	last := uint64(st.last())
	var batch []*record
	if backwards {
		from := last
		if r, ok := o.GetRevisionOption().(*streams.ReadReq_Options_StreamOptions_Revision); ok && r.Revision < last {
			from = r.Revision
		}
		for rev := int64(from); rev >= int64(st.tb) && uint64(len(batch)) < count; rev-- {
			batch = append(batch, st.recs[rev])
		}
	} else {
		var from uint64
		switch r := o.GetRevisionOption().(type) {
		case *streams.ReadReq_Options_StreamOptions_Revision:
			from = r.Revision
		case *streams.ReadReq_Options_StreamOptions_End:
			s.mu.Unlock()
			// The server's forward path rejects the end revision (-1).
			return status.Error(codes.InvalidArgument, "a forwards read cannot start at the end of a stream")
		}
		from = max(from, st.tb)
		for rev := from; rev <= last && uint64(len(batch)) < count; rev++ {
			batch = append(batch, st.recs[rev])
		}
	}
	s.mu.Unlock()
	for _, r := range batch {
		if err := out.Send(eventResp(r, asString)); err != nil {
			return err
		}
	}
	return nil
}

// readAll reads $all: forwards inclusive of the start position, backwards exclusive of it.
func (s *Server) readAll(o *streams.ReadReq_Options_AllOptions, backwards bool, count uint64, f *filter, asString bool, out streams.Streams_ReadServer) error {
	s.mu.Lock()
	l := s.log
	var batch []*record
	add := func(r *record) {
		if f == nil || f.match(r) {
			batch = append(batch, r)
		}
	}
	var start int
	switch p := o.GetAllOption().(type) {
	case *streams.ReadReq_Options_AllOptions_Start:
		start = 0
		if backwards {
			start = -1
		}
	case *streams.ReadReq_Options_AllOptions_End:
		start = len(l.recs)
		if backwards {
			start = len(l.recs) - 1
		}
	case *streams.ReadReq_Options_AllOptions_Position:
		if err := checkPosition(l, p.Position, f != nil); err != nil {
			s.mu.Unlock()
			return err
		}
		start = l.search(p.Position.GetCommitPosition())
		if backwards {
			start--
		}
	default:
		s.mu.Unlock()
		return status.Error(codes.InvalidArgument, "$all read position is missing")
	}
	if backwards {
		for i := start; i >= 0 && uint64(len(batch)) < count; i-- {
			add(l.recs[i])
		}
	} else {
		for i := start; i < len(l.recs) && uint64(len(batch)) < count; i++ {
			add(l.recs[i])
		}
	}
	s.mu.Unlock()
	for _, r := range batch {
		if err := out.Send(eventResp(r, asString)); err != nil {
			return err
		}
	}
	return nil
}

// checkPosition rejects a $all position the server would reject: commit before prepare, or a
// position inside the log that is not a record boundary (InvalidArgument for filtered reads and
// subscriptions, Unknown for plain reads).
func checkPosition(l *eventLog, p *streams.ReadReq_Options_Position, strict bool) error {
	if p.GetCommitPosition() < p.GetPreparePosition() {
		return status.Error(codes.InvalidArgument, "commit position is before prepare position")
	}
	if !l.isBoundary(p.GetCommitPosition()) {
		code := codes.Unknown
		if strict {
			code = codes.InvalidArgument
		}
		return status.Error(code, "Trying to read from an invalid position")
	}
	return nil
}

func eventResp(r *record, asString bool) *streams.ReadResp {
	ct := "application/octet-stream"
	if r.isJSON {
		ct = contentTypeJSON
	}
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: &streams.ReadResp_ReadEvent{
		Event: &streams.ReadResp_ReadEvent_RecordedEvent{
			Id:               uuidToProto(r.id, asString),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": ct,
				"created":      strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

// filter is a $all filter (EventFilter.cs): on the event type or the stream name, by an
// unanchored regex or by prefixes (an empty prefix list matches nothing).
type filter struct {
	onType   bool
	re       *regexp.Regexp
	prefixes []string
	interval uint64 // checkpoint interval of a filtered subscription, in considered events
}

func parseFilter(fo *streams.ReadReq_Options_FilterOptions) (*filter, error) {
	var f filter
	var expr *streams.ReadReq_Options_FilterOptions_Expression
	switch v := fo.GetFilter().(type) {
	case *streams.ReadReq_Options_FilterOptions_EventType:
		f.onType, expr = true, v.EventType
	case *streams.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	default:
		return nil, status.Error(codes.InvalidArgument, "filter target is missing")
	}
	if rx := expr.GetRegex(); rx != "" {
		re, err := regexp.Compile(rx)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
		f.re = re
	} else {
		f.prefixes = expr.GetPrefix()
	}
	window := uint64(pageSize)
	if m, ok := fo.GetWindow().(*streams.ReadReq_Options_FilterOptions_Max); ok {
		window = uint64(m.Max)
	}
	// A zero multiplier is rejected for subscriptions only (subscribeAll); reads send no checkpoints.
	f.interval = window * uint64(fo.GetCheckpointIntervalMultiplier())
	return &f, nil
}

func (f *filter) match(r *record) bool {
	s := r.stream
	if f.onType {
		s = r.typ
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
