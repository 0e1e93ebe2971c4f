# Mistakes in image and thumbnail blocks.
set "photos" {
  extensions = ["jpg", "png", "heic"]
  image {
    format     = "gif"
    quality    = 101
    max_width  = 0
    max_height = 20.5
    max_pixels = "50M"
    auto_orient = "yes"
    colour     = "red"
  }
  image {
    format = "png"
  }
  thumbnail "small" {
    width  = 300
    height = 300
    fit    = "fill"
  }
  thumbnail "small" {
    width  = 100
    height = 100
  }
  thumbnail "../x" {
    width  = 100
    height = 100
  }
  thumbnail "wide" {
    width = 800
  }
  thumbnail {
    width  = 1
    height = 1
  }
}

set "webp" {
  extensions = ["webp"]
  image {
    format    = "webp"
    max_width = 20000
  }
  thumbnail "huge" {
    width  = 70000
    height = 100
    format = "jpeg"
  }
}

set "mixed" {
  extensions = concat(images, ["heic", "pdf"])
  deny       = ["svg"]
  thumbnail "small" {
    width  = 300
    height = 300
  }
}

set "lossless" {
  extensions = ["png"]
  image {
    format         = "png"
    quality        = 90
    auto_orient    = false
    strip_metadata = true
  }
  thumbnail "q" {
    width  = -3
    height = 1e99999999
  }
}
