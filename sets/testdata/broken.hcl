# Every mistake in this file must be reported, each at its own position.
listen       = "8080"
public_url   = "ftp://example.com"
max_size     = "16 Mebibytes"
expire_after = "1 day"
shutdown_timeout = "-5s"
colour       = "blue"

set "photos" {
  extensions = concat(imagez, ["heic"])
  naming     = "random"
  url        = "cdn.example.com/photos"
}

set "Photos!" {
  extensions = ["jpg", "p n g", ".PNG"]
}

set "photos" {
  extensions = images
  allow      = ["png"]
  deny       = ["exe"]
  unknown    = 1
}

set "docs" {
  max_size     = "2GiB"
  destination  = "uploads/photos"
  expire_after = "0s"
  naming       = uuid
}

banner "x" {}
