package events

// decodeProject decodes the events of project streams.
func decodeProject(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
