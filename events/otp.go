package events

// decodeOTP decodes the events of otp streams.
func decodeOTP(eventType string, data []byte) (Event, error) {
	switch eventType {
	}
	return nil, ErrUnknownType
}
