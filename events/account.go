package events

// decodeAccount decodes the events of account streams.
func decodeAccount(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
