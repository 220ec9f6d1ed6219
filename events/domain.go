package events

// decodeDomain decodes the events of domain streams.
func decodeDomain(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
