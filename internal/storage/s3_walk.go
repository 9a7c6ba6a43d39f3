package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// listPageSize is how many keys (or uploads) one listing request asks for,
// the most S3 gives.
const listPageSize = 1000

// Walk calls fn for the objects whose key starts with prefix, following
// ListObjectsV2 pages.
func (s *S3) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), MaxKeys: aws.Int32(listPageSize)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 walk %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Uploads lists the multipart uploads in the bucket created before before,
// in key order.
//
// It pages through ListMultipartUploads with the key marker only: versitygw
// (v1.8.0) answers the AWS continuation, key marker plus upload id marker,
// with InvalidArgument. A key marker alone skips the rest of the uploads of
// the key a page ends on, so those are fetched apart, by prefix: they sort
// first among the keys with that prefix. Should one key have more than a
// page of uploads, only its first page is listed; aborting them lets the
// next call see the rest.
func (s *S3) Uploads(ctx context.Context, before time.Time) ([]Upload, error) {
	var ups []Upload
	seen := map[string]bool{} // upload ids
	add := func(us []types.MultipartUpload, onlyKey *string) {
		for _, u := range us {
			id := aws.ToString(u.UploadId)
			if seen[id] || (onlyKey != nil && aws.ToString(u.Key) != *onlyKey) {
				continue
			}
			seen[id] = true
			if started := aws.ToTime(u.Initiated); started.Before(before) {
				ups = append(ups, Upload{Key: aws.ToString(u.Key), ID: id, Started: started})
			}
		}
	}
	list := func(in *s3.ListMultipartUploadsInput) (*s3.ListMultipartUploadsOutput, error) {
		in.Bucket, in.MaxUploads = aws.String(s.bucket), aws.Int32(listPageSize)
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("s3 list uploads: %w", err)
		}
		return out, nil
	}
	in := &s3.ListMultipartUploadsInput{}
	for {
		out, err := list(in)
		if err != nil {
			return nil, err
		}
		add(out.Uploads, nil)
		if !aws.ToBool(out.IsTruncated) || len(out.Uploads) == 0 {
			return ups, nil
		}
		last := out.Uploads[len(out.Uploads)-1].Key
		if aws.ToString(last) <= aws.ToString(in.KeyMarker) {
			return nil, fmt.Errorf("s3 list uploads: a truncated page ends at %q, not past its key marker %q", aws.ToString(last), aws.ToString(in.KeyMarker))
		}
		rest, err := list(&s3.ListMultipartUploadsInput{Prefix: last})
		if err != nil {
			return nil, err
		}
		add(rest.Uploads, last)
		in = &s3.ListMultipartUploadsInput{KeyMarker: last}
	}
}

// AbortUpload aborts the multipart upload u, deleting its parts.
func (s *S3) AbortUpload(ctx context.Context, u Upload) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(u.Key), UploadId: aws.String(u.ID)})
	if err != nil && !isNoSuchUpload(err) {
		return fmt.Errorf("s3 abort upload %s of %s: %w", u.ID, u.Key, err)
	}
	return nil
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsu) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload"
}
