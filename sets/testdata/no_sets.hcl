# Server settings alone: every upload would be refused.
listen   = "127.0.0.1:8080"
data_dir = "./data"
max_size = "1GiB"
