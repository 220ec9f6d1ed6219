package analytics

import "testing"

// Real user agents, as the clients send them.
const (
	uaChromeWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaFirefoxLinux   = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSafariMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
	uaChromeAndroid  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	uaSlack          = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
	uaWhatsApp       = "WhatsApp/2.23.20.0 A"
	uaIMessage       = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
	uaTwitter        = "Twitterbot/1.0"
	uaDiscord        = "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"
	uaTeams          = "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"
	uaTeamsNew       = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Safari/537.36 Edg/112.0.1722.48 (compatible; MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview)"
	uaTelegram       = "TelegramBot (like TwitterBot)"
	uaLinkedIn       = "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
	uaFacebook       = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
	uaGooglebot      = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaGPTBot         = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
	uaChatGPTUser    = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot"
	uaClaudeBot      = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"
	uaClaudeUser     = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)"
	uaPerplexity     = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)"
	uaBarracuda      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Barracuda Sentinel (EE)"
	uaHeadless       = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"
	uaCurl           = "curl/8.5.0"
	uaPython         = "python-requests/2.31.0"
	uaGoHTTP         = "Go-http-client/1.1"
	uaBingPreview    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b"
	uaLighthouse     = "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"
	uaAppleBot       = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"
	uaMetaExternal   = "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)"
	uaGoogleOther    = "GoogleOther"
	uaOAISearch      = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot"
	uaPerplexityUser = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)"
)

func TestClassify(t *testing.T) {
	c := NewClassifier()
	for _, tc := range []struct {
		name, ua            string
		kind                Kind
		browser, os, device string
	}{
		{"chrome", uaChromeWindows, KindPerson, "Chrome", "Windows", "desktop"},
		{"safari iphone", uaSafariIPhone, KindPerson, "Safari", "iOS", "mobile"},
		{"firefox", uaFirefoxLinux, KindPerson, "Firefox", "Linux", "desktop"},
		{"safari mac", uaSafariMac, KindPerson, "Safari", "macOS", "desktop"},
		{"chrome android", uaChromeAndroid, KindPerson, "Chrome", "Android", "mobile"},

		{"slack", uaSlack, KindPreview, "", "", ""},
		{"whatsapp", uaWhatsApp, KindPreview, "", "", ""},
		{"imessage", uaIMessage, KindPreview, "", "", ""},
		{"x", uaTwitter, KindPreview, "", "", ""},
		{"discord", uaDiscord, KindPreview, "", "", ""},
		{"teams (skype)", uaTeams, KindPreview, "", "", ""},
		{"teams", uaTeamsNew, KindPreview, "", "", ""},
		{"telegram", uaTelegram, KindPreview, "", "", ""},
		{"linkedin", uaLinkedIn, KindPreview, "", "", ""},
		{"facebook", uaFacebook, KindPreview, "", "", ""},

		{"googlebot", uaGooglebot, KindBot, "", "", ""},
		{"gptbot", uaGPTBot, KindBot, "", "", ""},
		{"chatgpt-user", uaChatGPTUser, KindBot, "", "", ""},
		{"oai-searchbot", uaOAISearch, KindBot, "", "", ""},
		{"claudebot", uaClaudeBot, KindBot, "", "", ""},
		{"claude-user", uaClaudeUser, KindBot, "", "", ""},
		{"perplexitybot", uaPerplexity, KindBot, "", "", ""},
		{"perplexity-user", uaPerplexityUser, KindBot, "", "", ""},
		{"meta-externalagent", uaMetaExternal, KindBot, "", "", ""},
		{"googleother", uaGoogleOther, KindBot, "", "", ""},
		{"applebot", uaAppleBot, KindBot, "", "", ""},
		{"mail scanner (barracuda)", uaBarracuda, KindBot, "", "", ""},
		{"bingpreview scanner", uaBingPreview, KindBot, "", "", ""},
		{"headless chrome", uaHeadless, KindBot, "", "", ""},
		{"lighthouse", uaLighthouse, KindBot, "", "", ""},
		{"curl", uaCurl, KindBot, "", "", ""},
		{"python", uaPython, KindBot, "", "", ""},
		{"go", uaGoHTTP, KindBot, "", "", ""},
		{"empty", "", KindBot, "", "", ""},
		{"garbage", "zzzz", KindBot, "", "", ""},
	} {
		got := c.Classify(tc.ua)
		want := Agent{Kind: tc.kind, Browser: tc.browser, OS: tc.os, Device: tc.device}
		if got != want {
			t.Errorf("%s: Classify = %+v, want %+v", tc.name, got, want)
		}
	}
}
