package events

// decodeWorkspace decodes the events of workspace streams.
func decodeWorkspace(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
