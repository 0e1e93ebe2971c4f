listen               = ":0"
public_url           = "https://uploads.example.com/"
data_dir             = "/var/lib/uploadsets"
max_size             = 2147483648
uploads_default_dest = "files"
uploads_default_url  = "https://cdn.example.com/"
expire_after         = "90m"
shutdown_timeout     = "5s"
image_workers        = 3
trusted_proxies      = ["10.1.0.0/16", "::1"]

set "photos" {
  extensions = images
  allow      = [".HEIC"]
  deny       = ["svg", "BMP"]
  max_size   = "16MiB"
}

set "mixed" {
  extensions = concat(all_except(executables), ["dll"])
  naming     = "uuid"
  max_size   = "1.5 GB"
  expire_after = "1h"
}

set "local" {
  extensions  = text
  destination = "/srv/local"
  url         = ""
}

set "cdn" {
  extensions = data
  url        = "https://static.example.com/data"
}

set "plain" {
}

set "shared" {
  file_mode = "0664"
  dir_mode  = "0775"
}
log {
  level  = "debug"
  format = "json"
}
