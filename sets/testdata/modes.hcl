file_mode       = "644"
dir_mode        = "0655"
trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "proxy.local", "::1/200"]

set "photos" {
  file_mode = 0644
  dir_mode  = "0999"
}

set "docs" {
  file_mode = "0400"
}

set "fine" {
  file_mode = "0660"
  dir_mode  = "0750"
}
image_workers = 0
