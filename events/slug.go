package events

// decodeSlug decodes the events of slug streams.
func decodeSlug(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
