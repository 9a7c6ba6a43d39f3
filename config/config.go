// Package config reads mediad's one configuration struct from the environment.
//
// Every variable, its default and its meaning is listed in README.md and in
// ../shared/design/API.md; the defaults make up the embedded mode (SQLite,
// local disk, in-process rate limits, demo page) that `make run` starts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// MiB is one mebibyte.
const MiB = 1 << 20

// Config is the whole configuration of mediad.
type Config struct {
	ListenAddr  string `env:"LISTEN_ADDR" envDefault:"127.0.0.1:8789"`
	DataDir     string `env:"DATA_DIR" envDefault:"./data"`
	DatabaseURL string `env:"DATABASE_URL"`

	Storage           string `env:"STORAGE" envDefault:"disk"`
	S3Endpoint        string `env:"S3_ENDPOINT"`
	S3Region          string `env:"S3_REGION" envDefault:"auto"`
	S3Bucket          string `env:"S3_BUCKET"`
	S3AccessKeyID     string `env:"S3_ACCESS_KEY_ID"`
	S3SecretAccessKey string `env:"S3_SECRET_ACCESS_KEY"`
	S3PathStyle       bool   `env:"S3_PATH_STYLE" envDefault:"false"`
	// S3PartSize is the size of every multipart part (R2 wants them all equal, at least 5 MiB).
	S3PartSize int64 `env:"S3_PART_SIZE" envDefault:"8388608"`
	// S3PartConcurrency is how many parts of one upload are in flight at once.
	S3PartConcurrency int `env:"S3_PART_CONCURRENCY" envDefault:"2"`
	// S3MaxUploads bounds the uploads streaming to S3 at once, and so the
	// memory held in part buffers: S3MaxUploads × (S3PartConcurrency+1) × S3PartSize.
	S3MaxUploads int `env:"S3_MAX_UPLOADS" envDefault:"8"`

	PublicMediaURL string `env:"PUBLIC_MEDIA_URL"`
	RedisURL       string `env:"REDIS_URL"`

	GatewaySecrets     []string `env:"GATEWAY_SECRETS"`
	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS" envDefault:"http://localhost:3000"`

	RateLimitUploadsPerMinute  int  `env:"RATE_LIMIT_UPLOADS_PER_MINUTE" envDefault:"30"`
	RateLimitRequestsPerMinute int  `env:"RATE_LIMIT_REQUESTS_PER_MINUTE" envDefault:"600"`
	RateLimitFailClosed        bool `env:"RATE_LIMIT_FAIL_CLOSED" envDefault:"false"`

	MaxAvatarBytes     int64    `env:"MAX_AVATAR_BYTES" envDefault:"10485760"`
	MaxLogoBytes       int64    `env:"MAX_LOGO_BYTES" envDefault:"5242880"`
	MaxAttachmentBytes int64    `env:"MAX_ATTACHMENT_BYTES" envDefault:"104857600"`
	MaxImagePixels     int64    `env:"MAX_IMAGE_PIXELS" envDefault:"40000000"`
	AttachmentTypes    []string `env:"ATTACHMENT_TYPES" envDefault:"image/jpeg,image/png,image/gif,image/webp,application/pdf,text/plain,text/csv,application/zip,application/vnd.openxmlformats-officedocument.wordprocessingml.document,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,application/vnd.openxmlformats-officedocument.presentationml.presentation,application/vnd.oasis.opendocument.text,application/vnd.oasis.opendocument.spreadsheet,application/vnd.oasis.opendocument.presentation,application/msword,application/vnd.ms-excel,application/vnd.ms-powerpoint"`

	// Variant boxes: name:pixels, largest last or first (order does not matter).
	AvatarSizes   []string `env:"AVATAR_SIZES" envDefault:"sm:64,md:128,lg:256"`
	LogoSizes     []string `env:"LOGO_SIZES" envDefault:"sm:64,md:128,lg:512"`
	MasterMaxSide int      `env:"IMAGE_MASTER_MAX_SIDE" envDefault:"2048"`

	ReapInterval     time.Duration `env:"REAP_INTERVAL" envDefault:"5m"`
	ReapPendingAfter time.Duration `env:"REAP_PENDING_AFTER" envDefault:"1h"`
	ShutdownGrace    time.Duration `env:"SHUTDOWN_GRACE" envDefault:"30s"`

	// DemoPage is nil when unset: on with disk storage, off otherwise (see Demo).
	DemoPage *bool `env:"DEMO_PAGE"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT"`
}

// Load reads the configuration through getenv (os.Getenv in main, a map in
// tests) and validates it. The error names every wrong variable at once.
func Load(getenv func(string) string) (Config, error) {
	var c Config
	params, err := env.GetFieldParams(&c)
	if err != nil {
		return c, err
	}
	vars := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			vars[p.Key] = v
		}
	}
	var errs []error
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars}); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			errs = append(errs, agg.Errors...)
		} else {
			errs = append(errs, err)
		}
	}
	c.GatewaySecrets = trimAll(c.GatewaySecrets)
	c.CORSAllowedOrigins = trimAll(c.CORSAllowedOrigins)
	c.AttachmentTypes = trimAll(c.AttachmentTypes)
	c.AvatarSizes = trimAll(c.AvatarSizes)
	c.LogoSizes = trimAll(c.LogoSizes)
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// Validate reports every wrong setting, one line each.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	host, _, err := net.SplitHostPort(c.ListenAddr)
	if err != nil {
		bad("LISTEN_ADDR", "%q is not host:port", c.ListenAddr)
	} else if len(c.GatewaySecrets) == 0 && !isLoopback(host) {
		bad("GATEWAY_SECRETS", "must be set when LISTEN_ADDR (%s) is not a loopback address: without it anyone who reaches the port can claim any identity", c.ListenAddr)
	}
	if c.DataDir == "" {
		bad("DATA_DIR", "must not be empty")
	}
	if c.DatabaseURL != "" {
		if _, _, err := c.Database(); err != nil {
			bad("DATABASE_URL", "%v", err)
		}
	}
	switch c.Storage {
	case "disk":
	case "s3":
		for name, v := range map[string]string{"S3_ENDPOINT": c.S3Endpoint, "S3_BUCKET": c.S3Bucket, "S3_ACCESS_KEY_ID": c.S3AccessKeyID, "S3_SECRET_ACCESS_KEY": c.S3SecretAccessKey, "PUBLIC_MEDIA_URL": c.PublicMediaURL} {
			if v == "" {
				bad(name, "required when STORAGE=s3")
			}
		}
		if c.S3Endpoint != "" && !isHTTPURL(c.S3Endpoint) {
			bad("S3_ENDPOINT", "%q is not an http(s) URL", c.S3Endpoint)
		}
	default:
		bad("STORAGE", "%q is neither disk nor s3", c.Storage)
	}
	if c.S3PartSize < 5*MiB || c.S3PartSize > 5*1024*MiB {
		bad("S3_PART_SIZE", "%d is outside 5 MiB–5 GiB (the S3/R2 part size rule)", c.S3PartSize)
	}
	if c.S3PartConcurrency < 1 || c.S3PartConcurrency > 64 {
		bad("S3_PART_CONCURRENCY", "%d is outside 1–64", c.S3PartConcurrency)
	}
	if c.S3MaxUploads < 1 {
		bad("S3_MAX_UPLOADS", "%d must be at least 1", c.S3MaxUploads)
	}
	if c.PublicMediaURL != "" && !isHTTPURL(c.PublicMediaURL) {
		bad("PUBLIC_MEDIA_URL", "%q is not an http(s) URL", c.PublicMediaURL)
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("REDIS_URL", "%q is not a redis:// or rediss:// URL", c.RedisURL)
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if u, err := url.Parse(o); o == "*" || err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("CORS_ALLOWED_ORIGINS", "%q is not an exact origin such as https://app.example.com", o)
		}
	}
	positive := map[string]int64{
		"RATE_LIMIT_UPLOADS_PER_MINUTE":  int64(c.RateLimitUploadsPerMinute),
		"RATE_LIMIT_REQUESTS_PER_MINUTE": int64(c.RateLimitRequestsPerMinute),
		"MAX_AVATAR_BYTES":               c.MaxAvatarBytes,
		"MAX_LOGO_BYTES":                 c.MaxLogoBytes,
		"MAX_ATTACHMENT_BYTES":           c.MaxAttachmentBytes,
		"MAX_IMAGE_PIXELS":               c.MaxImagePixels,
		"REAP_INTERVAL":                  int64(c.ReapInterval),
		"REAP_PENDING_AFTER":             int64(c.ReapPendingAfter),
		"SHUTDOWN_GRACE":                 int64(c.ShutdownGrace),
	}
	for name, v := range positive {
		if v <= 0 {
			bad(name, "must be greater than zero")
		}
	}
	for name, list := range map[string][]string{"AVATAR_SIZES": c.AvatarSizes, "LOGO_SIZES": c.LogoSizes} {
		if _, err := ParseSizes(list); err != nil {
			bad(name, "%v", err)
		}
	}
	if c.MasterMaxSide < 64 || c.MasterMaxSide > 16384 {
		bad("IMAGE_MASTER_MAX_SIDE", "%d is outside 64–16384", c.MasterMaxSide)
	}
	if len(c.AttachmentTypes) == 0 {
		bad("ATTACHMENT_TYPES", "must list at least one type")
	}
	for _, t := range c.AttachmentTypes {
		if i := strings.IndexByte(t, '/'); i <= 0 || i == len(t)-1 || strings.ContainsAny(t, " ;") {
			bad("ATTACHMENT_TYPES", "%q is not a type/subtype or type/*", t)
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		bad("LOG_FORMAT", "%q is neither text nor json", c.LogFormat)
	}
	// Sorted output keeps the message stable whatever the map order.
	sortErrors(errs)
	return errors.Join(errs...)
}

// Size is one named variant box, e.g. md:128.
type Size struct {
	Name   string
	Pixels int
}

// ParseSizes reads a list such as ["sm:64", "md:128", "lg:256"]. Names are
// lower-case letters and digits, unique, never "original".
func ParseSizes(list []string) ([]Size, error) {
	if len(list) == 0 {
		return nil, errors.New("must name at least one size, e.g. sm:64,md:128,lg:256")
	}
	var sizes []Size
	seen := map[string]bool{}
	for _, item := range list {
		name, px, ok := strings.Cut(strings.TrimSpace(item), ":")
		n, err := strconv.Atoi(px)
		if !ok || err != nil || n < 8 || n > 4096 {
			return nil, fmt.Errorf("%q is not name:pixels with 8–4096 pixels", item)
		}
		if name == "" || name == "original" || seen[name] || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return nil, fmt.Errorf("%q: the name must be unique lower-case letters or digits, not original", item)
		}
		seen[name] = true
		sizes = append(sizes, Size{Name: name, Pixels: n})
	}
	return sizes, nil
}

// Database returns the driver ("sqlite" or "postgres") and its DSN.
func (c Config) Database() (driver, dsn string, err error) {
	switch {
	case c.DatabaseURL == "":
		return "sqlite", sqliteDSN(filepath.Join(c.DataDir, "mediad.db")), nil
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		return "postgres", c.DatabaseURL, nil
	case strings.HasPrefix(c.DatabaseURL, "sqlite://"):
		path := strings.TrimPrefix(c.DatabaseURL, "sqlite://")
		if path == "" {
			return "", "", errors.New("sqlite:// needs a file path, e.g. sqlite:///var/lib/mediad/mediad.db")
		}
		return "sqlite", sqliteDSN(path), nil
	default:
		return "", "", fmt.Errorf("%q is neither postgres://… nor sqlite:///path", redact(c.DatabaseURL))
	}
}

// sqliteDSN turns on foreign keys, WAL and a busy timeout: uploads write
// concurrently and must wait for the lock rather than fail.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// PublicURL is the base of public object URLs: PUBLIC_MEDIA_URL, or the
// service's own /blobs route when objects live on the local disk.
func (c Config) PublicURL() string {
	if c.PublicMediaURL != "" {
		return strings.TrimRight(c.PublicMediaURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.ListenAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/blobs"
}

// Demo tells whether to serve the demo page: DEMO_PAGE when set, else only
// with disk storage.
func (c Config) Demo() bool {
	if c.DemoPage != nil {
		return *c.DemoPage
	}
	return c.Storage == "disk"
}

// BlobDir is where the disk store keeps objects.
func (c Config) BlobDir() string { return filepath.Join(c.DataDir, "blobs") }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func trimAll(in []string) []string {
	out := in[:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redact hides a password in a URL before it reaches a message.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func sortErrors(errs []error) {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
}

// Keys lists every environment variable mediad reads, for the README check.
func Keys() []string {
	params, _ := env.GetFieldParams(&Config{})
	keys := make([]string, 0, len(params))
	for _, p := range params {
		keys = append(keys, p.Key)
	}
	return keys
}
