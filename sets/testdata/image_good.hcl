# Image sets that load: values, defaults and warnings.
set "photos" {
  extensions = ["jpg", "jpeg", "png", "heic", "webp"]
  image {
    max_width  = 2048
    max_height = 2048
    format     = "jpeg"
    quality    = 80
    max_pixels = 40000000
  }
  thumbnail "small" {
    width  = 300
    height = 300
  }
  thumbnail "square" {
    width  = 128
    height = 128
    fit    = "cover"
    format = "webp"
  }
}

# Thumbnails alone: the image is processed with the defaults.
set "avatars" {
  extensions = images
  thumbnail "s" {
    width  = 64
    height = 64
    fit    = "cover"
  }
}

set "plain" {
  extensions = ["txt"]
}
