# Several instances on S3 (MinIO here): partial uploads and placed files in one bucket.
listen   = ":0"
data_dir = "s3://uploads/partial"

uploads_default_dest = "s3://uploads/files/"

s3 {
  endpoint   = "http://127.0.0.1:7070/"
  region     = "us-east-1"
  path_style = true
}

redis {
  url = "redis://:hunter2@127.0.0.1:6379/0"
}

set "photos" {
  extensions  = images
  destination = "s3://media.example.com/photos/"
}

set "documents" {
  extensions = documents
}

set "archive" {
  extensions  = archives
  destination = "s3://cold-archive"
  file_mode   = "0600"
}
