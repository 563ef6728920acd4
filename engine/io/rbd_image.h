// Private to the RBD devices: the librados and librbd handles, owned.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <memory>
#include <string>
#include <system_error>

#include "cowsnap/io/rbd.h"

namespace cowsnap {

// strerror's text, thread-safe (librbd reports -errno).
inline std::string errno_text(int err) { return std::generic_category().message(err); }

// The process's connection to its cluster; shut down with the last image.
struct RbdCluster {
  RbdCluster(rados_t h, std::string what) : handle(h), description(std::move(what)) {}
  RbdCluster(const RbdCluster&) = delete;
  RbdCluster& operator=(const RbdCluster&) = delete;
  ~RbdCluster();
  rados_t handle;
  std::string description;  // "the Ceph cluster of CONF as client.ID", for messages
};

// A config value of the client as a string; empty when the key is unknown.
std::string ceph_conf_value(rados_t cluster, const char* key);

// One open image: its pool's I/O context and the librbd handle (thread-safe
// for every call used here). The cluster outlives it.
struct RbdDevice::Image {
  explicit Image(std::shared_ptr<RbdCluster> c) : cluster(std::move(c)) {}
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  ~Image();
  std::shared_ptr<RbdCluster> cluster;
  rados_ioctx_t io = nullptr;
  rbd_image_t handle = nullptr;
};

}  // namespace cowsnap
