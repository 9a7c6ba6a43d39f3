package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config is what the S3 backend needs; main fills it from config.Config.
type S3Config struct {
	Endpoint, Region, Bucket     string
	AccessKeyID, SecretAccessKey string
	PathStyle                    bool
	PartSize                     int64 // every part the same size (R2 rule), ≥ 5 MiB
	PartConcurrency              int   // parts of one upload in flight at once
	MaxUploads                   int   // uploads streaming at once, across the process
	HTTPClient                   *http.Client
}

// S3 keeps objects in a bucket of Cloudflare R2 or any S3 API, streaming
// uploads through the transfer manager.
//
// Memory: each upload holds at most (PartConcurrency+1) part buffers, and at
// most MaxUploads uploads run at once; the rest wait for a slot (or for their
// context to end). So part buffers never exceed
// MaxUploads × (PartConcurrency+1) × PartSize, whatever the traffic.
type S3 struct {
	client *s3.Client
	tm     *transfermanager.Client
	bucket string
	slots  chan struct{}
}

// NewS3 builds the client. The SDK's HTTP client is given through
// s3.Options, not config.LoadDefaultConfig, which reads AWS_* variables
// (AWS_CA_BUNDLE among them) meant for other programs.
func NewS3(c S3Config) *S3 {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
		}}
	}
	client := s3.New(s3.Options{
		Region:                     c.Region,
		BaseEndpoint:               aws.String(c.Endpoint),
		UsePathStyle:               c.PathStyle,
		Credentials:                credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""),
		HTTPClient:                 c.HTTPClient,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = c.PartSize
		// The first part is read whole before deciding between one PUT and a
		// multipart upload: at the part size, it is exactly one part.
		o.MultipartUploadThreshold = c.PartSize
		o.Concurrency = c.PartConcurrency
		// Without it, a cancelled upload aborts with its cancelled context,
		// that is not at all, and leaves its parts in the bucket.
		o.FailTimeout = 30 * time.Second
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	return &S3{client: client, tm: tm, bucket: c.Bucket, slots: make(chan struct{}, max(c.MaxUploads, 1))}
}

// Put streams r to key, as one PUT below one part size, else as a multipart
// upload that the transfer manager aborts when anything fails. r is read
// through ctxReader: the transfer manager reads on, up to a whole part, after
// ctx ends, and reading from a client that is gone is no use.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, meta Meta) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("s3 put %s: waiting for an upload slot: %w", key, ctx.Err())
	}
	defer func() { <-s.slots }()
	in := &transfermanager.UploadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
		Body:   ctxReader{ctx, r},
	}
	if meta.ContentType != "" {
		in.ContentType = aws.String(meta.ContentType)
	}
	if _, err := s.tm.UploadObject(ctx, in); err != nil {
		// Should the abort after a cancelled upload fail too, the transfer
		// manager reports the abort's failure alone, as text.
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return fmt.Errorf("s3 put %s: %w: %w", key, cerr, err)
		}
		return fmt.Errorf("s3 put %s: %w", key, err)
	}
	return nil
}

// Delete removes the keys one by one (a missing key is not an error in S3).
func (s *S3) Delete(ctx context.Context, keys ...string) error {
	var errs []error
	for _, key := range keys {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("s3 delete %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// Stat describes the object at key.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if isNotFound(err) {
		return Object{}, ErrNotFound
	}
	if err != nil {
		return Object{}, fmt.Errorf("s3 stat %s: %w", key, err)
	}
	return Object{Key: key, Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType), Modified: aws.ToTime(out.LastModified)}, nil
}

// Open reads the object at key.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if isNotFound(err) {
		return nil, Object{}, ErrNotFound
	}
	if err != nil {
		return nil, Object{}, fmt.Errorf("s3 open %s: %w", key, err)
	}
	return out.Body, Object{Key: key, Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType), Modified: aws.ToTime(out.LastModified)}, nil
}

// Ping checks that the bucket answers.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, err)
	}
	return nil
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey")
}
