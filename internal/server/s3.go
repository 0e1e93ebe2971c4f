package server

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/uploadsets/uploadsets/sets"
)

// s3Client makes the client of the config's s3 block. Credentials come from the AWS
// SDK's default chain (AWS_ACCESS_KEY_ID..., a profile, an instance role), and so does
// the region when the block names none.
func s3Client(cfg *sets.S3Config) (*s3.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	}), nil
}

// checkBucket makes a start fail at once, saying what is wrong, when a bucket cannot
// be reached (no credentials, a wrong endpoint or region, no such bucket), rather than
// at the first upload with a 500.
func checkBucket(client *s3.Client, bucket, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("bucket %q of %s cannot be reached: %w", bucket, what, err)
	}
	return nil
}
