data_dir             = "./store"
uploads_default_dest = "./store/files"

set "a" {
  extensions  = images
}

set "b" {
  extensions  = images
  destination = "./store/files/a"
}

set "c" {
  extensions  = images
  destination = "./store/files"
}

set "d" {
  extensions  = images
  destination = "/srv/elsewhere"
  url         = "https://cdn.example.com/d?x=1"
}
