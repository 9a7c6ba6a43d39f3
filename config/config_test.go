package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func vars(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaultsAreTheEmbeddedMode(t *testing.T) {
	c, err := Load(vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != "127.0.0.1:8789" || c.DataDir != "./data" || c.Storage != "disk" || c.S3Region != "auto" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.MaxAvatarBytes != 10*MiB || c.MaxLogoBytes != 5*MiB || c.MaxAttachmentBytes != 100*MiB || c.MaxImagePixels != 40_000_000 {
		t.Fatalf("size defaults: %+v", c)
	}
	if c.ReapInterval != 5*time.Minute || c.ReapPendingAfter != time.Hour || c.ShutdownGrace != 30*time.Second {
		t.Fatalf("durations: %+v", c)
	}
	if !c.Demo() || c.PublicURL() != "http://127.0.0.1:8789/blobs" {
		t.Fatalf("demo %v, public url %q", c.Demo(), c.PublicURL())
	}
	driver, dsn, err := c.Database()
	if err != nil || driver != "sqlite" || !strings.Contains(dsn, "data/mediad.db") || !strings.Contains(dsn, "foreign_keys(1)") {
		t.Fatalf("database: %s %s %v", driver, dsn, err)
	}
	if len(c.CORSAllowedOrigins) != 1 || c.CORSAllowedOrigins[0] != "http://localhost:3000" {
		t.Fatalf("cors: %v", c.CORSAllowedOrigins)
	}
	if len(c.AttachmentTypes) < 8 {
		t.Fatalf("attachment types: %v", c.AttachmentTypes)
	}
}

func TestValidateNamesEveryWrongVariableAtOnce(t *testing.T) {
	_, err := Load(vars(map[string]string{
		"STORAGE":              "ftp",
		"MAX_LOGO_BYTES":       "-1",
		"REAP_INTERVAL":        "soon",
		"LISTEN_ADDR":          "0.0.0.0:8789",
		"DATABASE_URL":         "mysql://x",
		"CORS_ALLOWED_ORIGINS": "*",
		"LOG_LEVEL":            "loud",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"STORAGE", "MAX_LOGO_BYTES", "REAP_INTERVAL", "GATEWAY_SECRETS", "DATABASE_URL", "CORS_ALLOWED_ORIGINS", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestS3NeedsItsSettings(t *testing.T) {
	_, err := Load(vars(map[string]string{"STORAGE": "s3"}))
	for _, name := range []string{"S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "PUBLIC_MEDIA_URL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	c, err := Load(vars(map[string]string{
		"STORAGE": "s3", "S3_ENDPOINT": "https://acc.r2.cloudflarestorage.com", "S3_BUCKET": "media",
		"S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s", "PUBLIC_MEDIA_URL": "https://media.example.com/",
		"LISTEN_ADDR": "0.0.0.0:8789", "GATEWAY_SECRETS": " one , two ", "DATABASE_URL": "postgres://u:p@db/mediad",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Demo() || c.PublicURL() != "https://media.example.com" || len(c.GatewaySecrets) != 2 || c.GatewaySecrets[1] != "two" {
		t.Fatalf("%+v", c)
	}
	if d, _, _ := c.Database(); d != "postgres" {
		t.Fatalf("driver %s", d)
	}
}

func TestPasswordsStayOutOfMessages(t *testing.T) {
	_, err := Load(vars(map[string]string{"DATABASE_URL": "mysql://user:hunter2@db/x"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("%v", err)
	}
}

func TestKeysListsEveryVariable(t *testing.T) {
	keys := strings.Join(Keys(), " ")
	for _, k := range []string{"LISTEN_ADDR", "DATA_DIR", "DATABASE_URL", "STORAGE", "S3_PATH_STYLE", "REDIS_URL", "GATEWAY_SECRETS", "DEMO_PAGE", "LOG_FORMAT"} {
		if !strings.Contains(keys, k) {
			t.Errorf("Keys() lacks %s", k)
		}
	}
}

func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(readme), "`"+k+"`") {
			t.Errorf("README.md does not list %s", k)
		}
	}
}
