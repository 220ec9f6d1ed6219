package events

// decodeIdentity decodes the events of identity streams.
func decodeIdentity(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
