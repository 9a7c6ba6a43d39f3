//go:build deps

package tools

import (
	_ "entgo.io/ent"
	_ "entgo.io/ent/cmd/ent"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/caarlos0/env/v11"
	_ "github.com/disintegration/imaging"
	_ "github.com/gabriel-vasile/mimetype"
	_ "github.com/go-redis/redis_rate/v10"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/rs/cors"
	_ "golang.org/x/image/webp"
	_ "modernc.org/sqlite"
)
