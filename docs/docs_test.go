package docs

import "testing"

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := OpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Paths.Find("/v1/auth/otp/request") == nil {
		t.Error("OTP request path missing")
	}
	if _, err := OpenAPIJSON(t.Context()); err != nil {
		t.Error(err)
	}
}
