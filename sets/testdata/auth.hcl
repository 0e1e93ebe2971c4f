set "nokey" {
  auth {
    public_files = true
  }
}

set "missing" {
  auth {
    secret_file = "./secrets/missing.key"
  }
}

set "directory" {
  auth {
    secret_file = "."
  }
}

set "empty" {
  auth {
    secret_file = "/dev/null"
  }
}

set "blank" {
  auth {
    secret_file  = ""
    public_files = "yes"
  }
}

set "number" {
  auth {
    secret_file = 42
    colour      = "red"
  }
}

set "twice" {
  auth {
    secret_file = "./secrets/missing.key"
  }
  auth {
    secret_file = "./secrets/other.key"
  }
}

set "labelled" {
  auth "jwt" {
    secret_file = "./secrets/missing.key"
  }
}
