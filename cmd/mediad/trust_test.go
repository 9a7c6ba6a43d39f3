package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/logicspike/mediad/internal/imagery/imagerytest"
	"github.com/logicspike/mediad/internal/media"
	"github.com/logicspike/mediad/internal/testsvc"
)

func TestGatewaySecrets(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, map[string]string{"GATEWAY_SECRETS": "old-secret, new-secret"})
	for secret, want := range map[string]int{"": 401, "wrong": 401, "old-secret": 200, "new-secret": 200, "old": 401} {
		hdr := map[string]string{}
		if secret != "" {
			hdr["x-gateway-secret"] = secret
		}
		resp := s.do(t, alice, "GET", "/files", nil, hdr)
		if resp.StatusCode != want {
			t.Errorf("secret %q: %d, want %d", secret, resp.StatusCode, want)
		}
		if want == 401 {
			expectProblem(t, resp, 401, "unauthorized")
		}
	}
	// The open routes need no secret.
	for _, path := range []string{"/health", "/ready", "/metrics", "/users/u_alice/avatar"} {
		if resp := s.do(t, who{}, "GET", path, nil, nil); resp.StatusCode == 401 {
			t.Errorf("%s asks for the secret", path)
		}
	}
	// Identity headers are trimmed.
	var f media.File
	decode(t, s.do(t, who{user: "  u_trim  "}, "POST", "/upload?purpose=attachment", nil, map[string]string{"x-gateway-secret": "new-secret"}), 400, nil)
	ct, body := multipartBody(nil, "a.txt", text(10))
	decode(t, s.do(t, who{user: " u_trim "}, "POST", "/upload?purpose=attachment", strings.NewReader(string(body)), map[string]string{"x-gateway-secret": "old-secret", "Content-Type": ct}), 201, &f)
	if f.UserID != "u_trim" || f.Scope != "users/u_trim" {
		t.Fatalf("identity not trimmed: %+v", f)
	}
}

func TestRefusesToListenPubliclyWithoutSecrets(t *testing.T) {
	err := run(context.Background(), []string{"mediad"}, func(k string) string {
		return map[string]string{"LISTEN_ADDR": "0.0.0.0:0", "DATA_DIR": t.TempDir()}[k]
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GATEWAY_SECRETS") {
		t.Fatalf("err = %v", err)
	}
}

func TestCORS(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com,https://admin.example.com"})
	preflight := func(origin string) *http.Response {
		return s.do(t, who{}, "OPTIONS", "/upload", nil, map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type,idempotency-key,x-tenant-id,x-user-id", // as browsers send them: lower-case, sorted
		})
	}
	resp := preflight("https://app.example.com")
	if resp.StatusCode >= 300 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"x-user-id", "x-tenant-id", "idempotency-key", "content-type"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("preflight does not allow %s: %q", h, allowed)
		}
	}
	for _, origin := range []string{"https://evil.example.com", "https://app.example.com.evil.com", "null"} {
		if resp := preflight(origin); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s allowed", origin)
		}
	}
	resp = s.do(t, alice, "GET", "/files", nil, map[string]string{"Origin": "https://admin.example.com"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://admin.example.com" {
		t.Fatalf("actual response: %v", resp.Header)
	}
	exposed := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"x-request-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("%s not exposed: %q", h, exposed)
		}
	}
}

func TestRateLimits(t *testing.T) {
	s := start(t, backend{"sqlite", "disk"}, map[string]string{"RATE_LIMIT_UPLOADS_PER_MINUTE": "3", "RATE_LIMIT_REQUESTS_PER_MINUTE": "8"})
	for i := range 3 {
		resp := s.upload(t, alice, "attachment", "a.txt", text(100))
		decode(t, resp, 201, nil)
		if resp.Header.Get("RateLimit-Limit") != "3" || resp.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) || resp.Header.Get("RateLimit-Reset") == "" {
			t.Fatalf("upload %d headers: %v", i, resp.Header)
		}
	}
	resp := s.upload(t, alice, "attachment", "a.txt", text(100))
	expectProblem(t, resp, 429, "rate_limited")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 60 || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("429 headers: %v", resp.Header)
	}
	if len(s.rows(t)) != 3 {
		t.Fatal("a refused upload was recorded")
	}
	// Another user has a budget of its own.
	decode(t, s.upload(t, who{user: "u_bob"}, "attachment", "b.txt", text(10)), 201, nil)
	// All requests: 4 uploads so far for alice, 4 more requests, then 429.
	for range 4 {
		decode(t, s.do(t, alice, "GET", "/files", nil, nil), 200, nil)
	}
	expectProblem(t, s.do(t, alice, "GET", "/files", nil, nil), 429, "rate_limited")
}

func TestRateLimitsSharedThroughRedis(t *testing.T) {
	rdb := testsvc.Redis(t)
	env := map[string]string{"REDIS_URL": rdb.URL, "RATE_LIMIT_UPLOADS_PER_MINUTE": "4"}
	a := start(t, backend{"sqlite", "disk"}, env)
	b := start(t, backend{"sqlite", "disk"}, env)
	for _, s := range []*server{a, b, a, b} {
		decode(t, s.upload(t, alice, "attachment", "a.txt", text(10)), 201, nil)
	}
	expectProblem(t, a.upload(t, alice, "attachment", "a.txt", text(10)), 429, "rate_limited")
	expectProblem(t, b.upload(t, alice, "attachment", "a.txt", text(10)), 429, "rate_limited")
	decode(t, a.do(t, who{}, "GET", "/ready", nil, nil), 200, nil)

	// Redis down: served (fail open), counted, and readiness says so.
	rdb.Stop()
	decode(t, a.upload(t, who{user: "u_carol"}, "attachment", "c.txt", text(10)), 201, nil)
	decode(t, a.do(t, alice, "GET", "/files", nil, nil), 200, nil)
	body, _ := io.ReadAll(a.do(t, who{}, "GET", "/metrics", nil, nil).Body)
	if !strings.Contains(string(body), "mediad_rate_limiter_errors_total") || strings.Contains(string(body), "mediad_rate_limiter_errors_total 0\n") {
		t.Errorf("limiter errors not counted")
	}
	if p := expectProblem(t, a.do(t, who{}, "GET", "/ready", nil, nil), 503, "unavailable"); !strings.Contains(p.Detail, "redis") {
		t.Errorf("ready detail %q", p.Detail)
	}
	closed := start(t, backend{"sqlite", "disk"}, map[string]string{"REDIS_URL": rdb.URL, "RATE_LIMIT_FAIL_CLOSED": "true"})
	expectProblem(t, closed.do(t, alice, "GET", "/files", nil, nil), 503, "unavailable")
	rdb.Start(t)
	eventually(t, "redis to answer again", func() bool {
		resp := closed.do(t, alice, "GET", "/files", nil, nil)
		return resp.StatusCode == 200
	})
}

func TestUsage(t *testing.T) {
	for _, b := range []backend{{"sqlite", "disk"}, {"postgres", "s3"}} {
		t.Run(b.String(), func(t *testing.T) {
			s := start(t, b, nil)
			admin := who{user: "u_admin", perms: "workspace:admin, media:admin"}
			acmeA := who{user: "u_a", tenant: "t_acme"}
			acmeB := who{user: "u_b", tenant: "t_acme"}
			globex := who{user: "u_c", tenant: "t_globex"}
			total := func(f media.File) int64 {
				n := f.Size
				for _, v := range f.Variants {
					n += v.Size
				}
				return n
			}
			files := []media.File{
				s.mustUpload(t, acmeA, "attachment", "a.txt", text(1000)),
				s.mustUpload(t, acmeA, "logo", "logo.png", imagerytest.LogoPNG(300, 120)),
				s.mustUpload(t, acmeB, "attachment", "b.txt", text(2500)),
				s.mustUpload(t, globex, "attachment", "c.txt", text(700)),
				s.mustUpload(t, globex, "avatar", "me.jpg", imagerytest.CameraJPEG(200, 200, 1, 90)),
			}
			gone := s.mustUpload(t, acmeB, "attachment", "gone.txt", text(9999))
			if resp := s.do(t, acmeB, "DELETE", "/files/"+gone.ID, nil, nil); resp.StatusCode != 204 {
				t.Fatal(resp.Status)
			}
			want := map[string]map[string]int64{"tenant": {}, "user": {}, "purpose": {}}
			var all int64
			for _, f := range files {
				tenant := "(none)"
				if f.TenantID != nil {
					tenant = *f.TenantID
				}
				want["tenant"][tenant] += total(f)
				want["user"][f.UserID] += total(f)
				want["purpose"][string(f.Purpose)] += total(f)
				all += total(f)
			}
			for groupBy, groups := range want {
				var u media.Usage
				decode(t, s.do(t, admin, "GET", "/admin/usage?groupBy="+groupBy, nil, nil), 200, &u)
				if u.Totals.Files != 5 || u.Totals.Bytes != all {
					t.Fatalf("totals %+v, want 5 files %d bytes", u.Totals, all)
				}
				got := map[string]int64{}
				for _, g := range u.Groups {
					key := "(none)"
					if g.Key != nil {
						key = *g.Key
					}
					got[key] = g.Bytes
				}
				if len(got) != len(groups) {
					t.Fatalf("%s: %v, want %v", groupBy, got, groups)
				}
				for k, v := range groups {
					if got[k] != v {
						t.Errorf("%s %s: %d bytes, want %d", groupBy, k, got[k], v)
					}
				}
			}
			var u media.Usage
			decode(t, s.do(t, admin, "GET", "/admin/usage?tenantId=t_acme&groupBy=user", nil, nil), 200, &u)
			if u.Totals.Bytes != want["tenant"]["t_acme"] || len(u.Groups) != 2 {
				t.Fatalf("acme usage %+v", u)
			}
			decode(t, s.do(t, admin, "GET", "/admin/usage?userId=u_b", nil, nil), 200, &u)
			if u.Totals.Files != 1 || u.Totals.Bytes != want["user"]["u_b"] {
				t.Fatalf("u_b usage %+v", u)
			}
			decode(t, s.do(t, admin, "GET", "/admin/usage?to=2000-01-01T00:00:00Z", nil, nil), 200, &u)
			if u.Totals.Files != 0 || u.Totals.Bytes != 0 || u.Groups == nil {
				t.Fatalf("empty window %+v", u)
			}
			decode(t, s.do(t, admin, "GET", "/admin/usage?from=2000-01-01T00:00:00Z", nil, nil), 200, &u)
			if u.Totals.Files != 5 {
				t.Fatalf("from filter %+v", u)
			}
			expectProblem(t, s.do(t, acmeA, "GET", "/admin/usage", nil, nil), 403, "forbidden")
			expectProblem(t, s.do(t, admin, "GET", "/admin/usage?groupBy=color", nil, nil), 400, "bad_request")
			expectProblem(t, s.do(t, admin, "GET", "/admin/usage?from=yesterday", nil, nil), 400, "bad_request")
		})
	}
}
