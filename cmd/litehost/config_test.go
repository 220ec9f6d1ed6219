package main

import (
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.EventStore != "postgres" || c.SitesDomain != "localhost" ||
		c.TempTTL != 15*time.Minute || c.MaxUploadBytes != 100<<20 || !c.OTPAutoCreate ||
		len(c.OTPChannels) != 1 || c.OTPChannels[0] != "email" || string(c.Secret) != devSecret {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{
		"LITEHOST_EVENT_STORE":     "mongo",
		"LITEHOST_SECRET":          "short",
		"LITEHOST_OTP_CHANNELS":    "email,pigeon",
		"LITEHOST_TEMP_TTL":        "soon",
		"LITEHOST_OTP_AUTO_CREATE": "maybe",
		"LOG_LEVEL":                "loud",
		"LITEHOST_DATABASE_URL":    "mysql://x",
		"LITEHOST_NATS_URL":        "http://nats",
		"LITEHOST_DNS_RESOLVER":    "no-port",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"LITEHOST_EVENT_STORE", "LITEHOST_SECRET", "LITEHOST_OTP_CHANNELS",
		"LITEHOST_TEMP_TTL", "LITEHOST_OTP_AUTO_CREATE", "LOG_LEVEL", "LITEHOST_DATABASE_URL",
		"LITEHOST_NATS_URL", "LITEHOST_DNS_RESOLVER"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestLoadConfigProductionNeedsSecretAndMail(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "LITEHOST_SECRET") {
		t.Errorf("production without a secret: %v", err)
	}
	c, err := loadConfig(envOf(map[string]string{"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_OTP_CHANNELS": "email,phone"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.checkDelivery(); err == nil || !strings.Contains(err.Error(), "LITEHOST_SMTP_URL") || !strings.Contains(err.Error(), "LITEHOST_SMS_URL") ||
		!strings.Contains(err.Error(), "LITEHOST_SMS_COUNTRIES") {
		t.Errorf("server without delivery: %v", err)
	}
	c, err = loadConfig(envOf(map[string]string{"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_OTP_CHANNELS": "email,phone",
		"LITEHOST_SMTP_URL": "smtp://mail:25", "LITEHOST_SMS_URL": "https://sms.example/send", "LITEHOST_SMS_COUNTRIES": "1, 44,49"}))
	if err != nil || c.checkDelivery() != nil || strings.Join(c.smsCountries(), ",") != "1,44,49" {
		t.Errorf("phone with an allow-list: %v %v %v", err, c.checkDelivery(), c.SMSCountries)
	}
	for _, bad := range []string{"+44", "044", "1234", "uk"} {
		if _, err := loadConfig(envOf(map[string]string{"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_SMS_COUNTRIES": bad})); err == nil ||
			!strings.Contains(err.Error(), "LITEHOST_SMS_COUNTRIES") {
			t.Errorf("LITEHOST_SMS_COUNTRIES=%s: %v", bad, err)
		}
	}
	// In development with codes only logged nothing is paid for: every country is allowed.
	c, err = loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true", "LITEHOST_OTP_CHANNELS": "phone"}))
	if err != nil || c.checkDelivery() != nil || len(c.smsCountries()) != 9 {
		t.Errorf("dev phone without a list: %v %v %v", err, c.checkDelivery(), c.smsCountries())
	}
	_, err = loadConfig(envOf(map[string]string{
		"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_SMTP_URL": "smtp://mail:25",
		"LITEHOST_EVENT_STORE": "esdb",
	}))
	if err == nil || !strings.Contains(err.Error(), "LITEHOST_ESDB_URL") {
		t.Errorf("esdb without URL: %v", err)
	}
	// The URL is checked with the client's parser at start-up: cluster forms pass, typos fail
	// with a message naming the variable and never the password.
	for url, ok := range map[string]bool{
		"esdb+discover://es1:2113,es2:2113,es3:2113?tls=false&nodePreference=leader": true,
		"esdb://es1:2113,es2:2113,es3:2113?tls=false&nodePreference=follower":        true,
		"esdb://u:hunter2secret@es1:2113?nodePreference=nearest":                     false,
		"http://es1:2113": false,
	} {
		_, err = loadConfig(envOf(map[string]string{
			"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_SMTP_URL": "smtp://mail:25",
			"LITEHOST_EVENT_STORE": "esdb", "LITEHOST_ESDB_URL": url,
		}))
		if ok != (err == nil) || (err != nil && (!strings.Contains(err.Error(), "LITEHOST_ESDB_URL") || strings.Contains(err.Error(), "hunter2secret"))) {
			t.Errorf("LITEHOST_ESDB_URL=%s: %v", url, err)
		}
	}
	c, err = loadConfig(envOf(map[string]string{
		"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_SMTP_URL": "smtp://mail:25",
	}))
	if err != nil || c.checkDelivery() != nil {
		t.Fatal(err)
	}
	for _, v := range c.logAttrs() {
		if s, ok := v.(string); ok && strings.Contains(s, strings.Repeat("s", 40)) {
			t.Error("the secret is in the start-up log attributes")
		}
	}
}
