package analytics

import (
	"strings"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
	"github.com/x-way/crawlerdetect"
)

// Kind is what a page request was, as far as analytics are concerned.
type Kind string

// The kinds of page request. Only people and previews are stored: a bot's request is neither an
// open nor a visit (spec §4.7), so it is counted in a metric and dropped.
const (
	KindPerson  Kind = "person"  // a browser; an open unless it is the owner or an in-site navigation
	KindPreview Kind = "preview" // a chat or social app fetching the page to draw a link card
	KindOwner   Kind = "owner"   // the project's owner, recognised by the owner cookie
	KindBot     Kind = "bot"     // crawlers, scanners, AI fetchers, scripts, no user agent
)

// previewAgents are the user-agent tokens of link-preview fetchers, lowercase. They are checked
// before the crawler list because crawlerdetect reports every one of them as a bot, and a preview
// is a visit (spec [S4]: "visits counts every non-bot page request, previews included"). iMessage
// sends "facebookexternalhit/1.1 Facebot Twitterbot/1.0", which the Facebook token covers.
var previewAgents = []string{
	"slackbot-linkexpanding", "slack-imgproxy", "slackbot ",
	"whatsapp",
	"facebookexternalhit", "facebot", "facebookcatalog",
	"twitterbot",
	"discordbot",
	"telegrambot",
	"skypeuripreview", "microsoftpreview",
	"linkedinbot",
	"redditbot", "pinterestbot", "embedly", "iframely", "vkshare", "mattermost-bot",
	"google-pagerenderer", "bitlybot",
}

// botAgents are bots that crawlerdetect v0.2.24 may not know, lowercase: AI assistants fetching
// a link for a user, and the link scanners of mail gateways, several of which send a browser-like
// user agent with one of these tokens.
var botAgents = []string{
	"gptbot", "chatgpt-user", "oai-searchbot", "claudebot", "claude-user", "claude-searchbot",
	"anthropic-ai", "perplexitybot", "perplexity-user", "cohere-ai", "meta-externalagent",
	"meta-externalfetcher", "amazonbot", "bytespider", "ccbot", "duckassistbot", "mistralai-user",
	"googleother", "applebot", "youbot", "diffbot", "timpibot", "ai2bot",
	"barracuda", "proofpoint", "mimecast", "safelinks", "trendmicro", "cisco ironport", "bitdefender",
	"symantec", "forcepoint", "sophos", "zscaler", "headlesschrome", "phantomjs", "lighthouse",
	"chrome-lighthouse", "pagespeed",
}

// Classifier tells people from previews and bots, and names a person's browser, system and
// device. It is safe for concurrent use.
type Classifier struct {
	ua      *useragent.Parser
	crawler *crawlerdetect.CrawlerDetect
}

// NewClassifier builds the classifier (the user-agent trie and the crawler patterns are built
// once, at start).
func NewClassifier() *Classifier {
	return &Classifier{ua: useragent.NewParser(), crawler: crawlerdetect.New()}
}

// Agent is what a user agent says about the client; empty fields are unknown.
type Agent struct {
	Kind    Kind
	Browser string
	OS      string
	Device  string
}

// Classify reads a User-Agent header. A request without one, or one no browser sends, is a bot:
// an open is a person viewing the page in a browser.
func (c *Classifier) Classify(userAgent string) Agent {
	ua := strings.TrimSpace(userAgent)
	if ua == "" {
		return Agent{Kind: KindBot}
	}
	lower := strings.ToLower(ua)
	if containsAny(lower, previewAgents) {
		return Agent{Kind: KindPreview}
	}
	if containsAny(lower, botAgents) || c.crawler.IsCrawler(ua) {
		return Agent{Kind: KindBot}
	}
	p := c.ua.Parse(ua)
	if p.IsBot() || p.Browser() == "" {
		return Agent{Kind: KindBot}
	}
	return Agent{Kind: KindPerson, Browser: string(p.Browser()), OS: osName(p.OS()), Device: deviceName(p.Device())}
}

func containsAny(s string, tokens []string) bool {
	for _, t := range tokens {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// osName spells the systems the way their makers do.
func osName(o agents.OS) string {
	if o == agents.OSMacOS {
		return "macOS"
	}
	return string(o)
}

// deviceName is the device class in lowercase (desktop, mobile, tablet, tv), as in spec [S4].
func deviceName(d agents.Device) string {
	return strings.ToLower(string(d))
}
