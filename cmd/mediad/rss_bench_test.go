package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logicspike/mediad/internal/testsvc"
)

// BenchmarkUploadPeakRSS streams one large attachment (UPLOAD_BENCH_MIB,
// default 1024) through a mediad process to versitygw and reports mediad's
// peak RSS, read by /usr/bin/time -v. Run it alone, once:
//
//	make bench-rss
func BenchmarkUploadPeakRSS(b *testing.B) {
	size := int64(1024) << 20
	if v, err := strconv.Atoi(os.Getenv("UPLOAD_BENCH_MIB")); err == nil && v > 0 {
		size = int64(v) << 20
	}
	timeBin := "/usr/bin/time"
	if _, err := os.Stat(timeBin); err != nil {
		b.Fatalf("%s is needed (Debian package time): %v", timeBin, err)
	}
	bin := filepath.Join(b.TempDir(), "mediad")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	s3 := testsvc.S3(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	for i := 0; i < b.N; i++ {
		timeLog := filepath.Join(b.TempDir(), "time.txt")
		cmd := exec.Command(timeBin, "-v", "-o", timeLog, bin)
		cmd.Env = append(os.Environ(),
			"LISTEN_ADDR="+addr, "DATA_DIR="+b.TempDir(), "STORAGE=s3", "S3_ENDPOINT="+s3.Endpoint,
			"S3_BUCKET="+s3.Bucket, "S3_ACCESS_KEY_ID="+s3.AccessKey, "S3_SECRET_ACCESS_KEY="+s3.SecretKey,
			"S3_PATH_STYLE=true", "PUBLIC_MEDIA_URL="+s3.Endpoint+"/"+s3.Bucket, "LOG_LEVEL=warn",
			fmt.Sprintf("MAX_ATTACHMENT_BYTES=%d", size+1<<20))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitHTTP(b, "http://"+addr+"/health")

		b.SetBytes(size)
		b.ResetTimer()
		start := time.Now()
		status := streamUpload(b, "http://"+addr+"/upload?purpose=attachment", size)
		elapsed := time.Since(start)
		b.StopTimer()
		if status != http.StatusCreated {
			b.Fatalf("upload status %d", status)
		}
		// time(1) does not pass signals on: stop its child, mediad.
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		pid, err := strconv.Atoi(strings.TrimSpace(string(children)))
		if err != nil {
			b.Fatalf("mediad's pid under time(1): %q", children)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("mediad under time(1): %v", err)
		}
		rss := peakRSS(b, timeLog)
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
		b.ReportMetric(float64(size)/(1<<20)/elapsed.Seconds(), "MiB/s")
	}
}

func waitHTTP(b *testing.B, url string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("%s did not answer", url)
}

// streamUpload posts size bytes of text as a chunked multipart upload
// (streamBody: made on the fly, so that the client holds nothing).
func streamUpload(b *testing.B, url string, size int64) int {
	ct, body := streamBody(size, nil)
	req, _ := http.NewRequestWithContext(context.Background(), "POST", url, body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("x-user-id", "u_bench")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		b.Logf("%s", out)
	}
	return resp.StatusCode
}

func peakRSS(b *testing.B, timeLog string) int64 {
	out, err := os.ReadFile(timeLog)
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("no peak RSS in:\n%s", out)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb
}
