# S3 mistakes: each reported at its attribute, all in one run.
data_dir             = "s3://partial-uploads/tmp/"
uploads_default_dest = "gs://elsewhere/files/"

s3 {
  endpoint   = "http://127.0.0.1:7070/minio"
  region     = ""
  path_style = "yes"
}

s3 {
  region = "eu-west-1"
}

redis {
  url = "http://127.0.0.1:6379"
}

set "photos" {
  destination = "s3://xn--photos/p/"
}

set "docs" {
  destination = "./uploads/docs"
}

set "tmp" {
  destination = "s3://ok-bucket/a/../b/"
}

set "frag" {
  destination = "s3://ok-bucket/a#b"
}

set "ip" {
  destination = "s3://192.168.5.4/x/"
}

set "empty" {
  destination = "s3:///x/"
}

set "colon" {
  destination = "ftp:files"
}

set "upper" {
  destination = "s3://Media/upper/"
}
