// The process's one Ceph client (rados_t) and the registry of open images
// that makes every RbdDevice naming one image share one librbd handle.
#include <fmt/format.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "cowsnap/io/rbd.h"
#include "rbd_image.h"

namespace cowsnap {
namespace {

constexpr const char* kBoundedTimeout = "30";

struct Registry {
  std::mutex mu;
  CephClient client;                                          // guarded by mu
  std::weak_ptr<RbdCluster> cluster;                          // guarded by mu
  std::map<std::string, std::weak_ptr<RbdDevice>> writable;   // guarded by mu
  std::map<std::string, std::weak_ptr<RbdDevice>> read_only;  // guarded by mu
};

Registry& registry() {
  static Registry r;
  return r;
}

// The open device of `name` in `devices`, if one is still alive.
std::shared_ptr<RbdDevice> live(const std::map<std::string, std::weak_ptr<RbdDevice>>& devices,
                                const std::string& name) {
  const auto it = devices.find(name);
  return it == devices.end() ? nullptr : it->second.lock();
}

// Sets `key` to `value` unless the config file or $CEPH_ARGS chose it
// (i.e. it still has Ceph's default, `ceph_default`).
void set_if_default(rados_t cluster, const char* key, const char* ceph_default, const char* value) {
  const std::string now = ceph_conf_value(cluster, key);
  if (now.empty() || now == ceph_default) (void)rados_conf_set(cluster, key, value);
}

std::string describe_client(const CephClient& c) {
  std::string conf = c.conf_path;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only use of the environment
  if (const char* env = std::getenv("CEPH_CONF"); conf.empty() && env != nullptr) conf = env;
  return fmt::format("the Ceph cluster of {}{}", conf.empty() ? std::string("/etc/ceph/ceph.conf") : conf,
                     c.id.empty() ? "" : fmt::format(" as client.{}", c.id));
}

Result<std::shared_ptr<RbdCluster>> connect_cluster(const CephClient& c) {
  rados_t cluster = nullptr;
  int rc = rados_create(&cluster, c.id.empty() ? nullptr : c.id.c_str());
  if (rc < 0) {
    return Status::Error(
        -rc, fmt::format("cannot create a Ceph client for {}: {}", describe_client(c), errno_text(-rc)));
  }
  auto result = std::make_shared<RbdCluster>(cluster, describe_client(c));
  rc = rados_conf_read_file(cluster, c.conf_path.empty() ? nullptr : c.conf_path.c_str());
  if (rc < 0) {
    return Status::Error(
        -rc, fmt::format("cannot read the Ceph config {}: {}{}",
                         c.conf_path.empty() ? "($CEPH_CONF or /etc/ceph/ceph.conf)" : c.conf_path,
                         errno_text(-rc), c.conf_path.empty() ? " (give --ceph-conf or set CEPH_CONF)" : ""));
  }
  (void)rados_conf_set(cluster, "rbd_cache", "false");
  set_if_default(cluster, "client_mount_timeout", "300", kBoundedTimeout);
  set_if_default(cluster, "rados_mon_op_timeout", "0", kBoundedTimeout);
  rc = rados_conf_parse_env(cluster, nullptr);  // $CEPH_ARGS
  if (rc < 0) {
    return Status::Error(EINVAL, fmt::format("bad $CEPH_ARGS: {}", errno_text(-rc)));
  }
  rc = rados_connect(cluster);
  if (rc < 0) {
    return Status::Error(-rc, fmt::format("cannot connect to {} (mon_host {}): {}", result->description,
                                          ceph_conf_value(cluster, "mon_host"), errno_text(-rc)));
  }
  return result;
}

// Under registry().mu.
Result<std::shared_ptr<RbdCluster>> cluster_locked(Registry& r) {
  if (auto live = r.cluster.lock()) return live;
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<RbdCluster> c, connect_cluster(r.client));
  r.cluster = c;
  return c;
}

Result<std::shared_ptr<RbdDevice::Image>> open_image(const std::shared_ptr<RbdCluster>& cluster,
                                                     const std::string& name, const RbdImageName& parts,
                                                     bool read_only, bool* image_missing = nullptr) {
  auto image = std::make_shared<RbdDevice::Image>(cluster);
  int rc = rados_ioctx_create(cluster->handle, parts.pool.c_str(), &image->io);
  if (rc < 0) {
    image->io = nullptr;
    if (rc == -ENOENT) {
      return Status::Error(
          ENOENT, fmt::format("{}: pool {} does not exist in {}", name, parts.pool, cluster->description));
    }
    return Status::Error(-rc, fmt::format("{}: cannot open pool {}: {}", name, parts.pool, errno_text(-rc)));
  }
  rados_ioctx_set_namespace(image->io, parts.name_space.c_str());
  rc = read_only ? rbd_open_read_only(image->io, parts.image.c_str(), &image->handle, nullptr)
                 : rbd_open(image->io, parts.image.c_str(), &image->handle, nullptr);
  if (rc < 0) {
    image->handle = nullptr;
    if (rc == -ENOENT) {
      if (image_missing != nullptr) *image_missing = true;
      return Status::Error(
          ENOENT, fmt::format("{}: image {} does not exist in pool {}", name, parts.image, parts.pool));
    }
    return Status::Error(-rc, fmt::format("{}: cannot open the image: {}", name, errno_text(-rc)));
  }
  return image;
}

Status create_image(const std::shared_ptr<RbdCluster>& cluster, const std::string& name,
                    const RbdImageName& parts, uint64_t size_bytes) {
  RbdDevice::Image pool(cluster);
  int rc = rados_ioctx_create(cluster->handle, parts.pool.c_str(), &pool.io);
  if (rc < 0) {
    pool.io = nullptr;
    return Status::Error(-rc, fmt::format("{}: cannot open pool {} to create the image: {}", name, parts.pool,
                                          rc == -ENOENT ? "no such pool" : errno_text(-rc)));
  }
  rados_ioctx_set_namespace(pool.io, parts.name_space.c_str());
  rbd_image_options_t opts = nullptr;
  rbd_image_options_create(&opts);
  rc = rbd_create4(pool.io, parts.image.c_str(), size_bytes, opts);
  rbd_image_options_destroy(opts);
  if (rc < 0 && rc != -EEXIST) {  // EEXIST: a concurrent creator won
    return Status::Error(
        -rc, fmt::format("{}: cannot create an image of {} bytes: {}", name, size_bytes, errno_text(-rc)));
  }
  return Status::Ok();
}

}  // namespace

std::string ceph_conf_value(rados_t cluster, const char* key) {
  std::array<char, 256> buf{};
  if (rados_conf_get(cluster, key, buf.data(), buf.size()) != 0) return {};
  return std::string(buf.data());
}

RbdCluster::~RbdCluster() {
  if (handle != nullptr) rados_shutdown(handle);
}

RbdDevice::Image::~Image() {
  if (handle != nullptr) (void)rbd_close(handle);
  if (io != nullptr) rados_ioctx_destroy(io);
}

void set_ceph_client(CephClient client) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.client = std::move(client);
}

CephClient ceph_client() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return r.client;
}

bool is_rbd_name(std::string_view name) { return name.starts_with(kRbdPrefix); }

Result<RbdImageName> parse_rbd_name(std::string_view name) {
  auto bad = [&] {
    return Status::Error(EINVAL, fmt::format("{}: not an RBD image name (rbd:POOL/IMAGE or "
                                             "rbd:POOL/NAMESPACE/IMAGE)",
                                             name));
  };
  if (!is_rbd_name(name)) return bad();
  std::vector<std::string> parts;
  std::string_view rest = name.substr(kRbdPrefix.size());
  while (true) {
    const size_t slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    if (parts.back().empty() || parts.back().find('@') != std::string::npos) return bad();
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (parts.size() == 2) return RbdImageName{parts[0], "", parts[1]};
  if (parts.size() == 3) return RbdImageName{parts[0], parts[1], parts[2]};
  return bad();
}

Result<std::shared_ptr<RbdDevice>> RbdDevice::open(const std::string& name, Options options) {
  COWSNAP_ASSIGN_OR_RETURN(RbdImageName parts, parse_rbd_name(name));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (auto dev = live(r.writable, name)) return dev;
  if (options.read_only) {
    if (auto dev = live(r.read_only, name)) return dev;
  }
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<RbdCluster> cluster, cluster_locked(r));
  bool image_missing = false;
  auto image = open_image(cluster, name, parts, options.read_only, &image_missing);
  if (!image.ok() && image_missing && options.create_size_bytes != 0 && !options.read_only) {
    COWSNAP_RETURN_IF_ERROR(create_image(cluster, name, parts, options.create_size_bytes));
    image = open_image(cluster, name, parts, options.read_only);
  }
  if (!image.ok()) return image.status();
  uint64_t size = 0;
  if (int rc = rbd_get_size((*image)->handle, &size); rc < 0) {
    return Status::Error(-rc, fmt::format("{}: cannot read the image's size: {}", name, errno_text(-rc)));
  }
  auto dev = std::make_shared<RbdDevice>(name, std::move(*image), size, options.read_only);
  (options.read_only ? r.read_only : r.writable)[name] = dev;
  return dev;
}

Result<bool> RbdDevice::exists(const std::string& name) {
  COWSNAP_ASSIGN_OR_RETURN(RbdImageName parts, parse_rbd_name(name));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (live(r.writable, name) || live(r.read_only, name)) return true;
  COWSNAP_ASSIGN_OR_RETURN(std::shared_ptr<RbdCluster> cluster, cluster_locked(r));
  bool image_missing = false;
  auto image = open_image(cluster, name, parts, true, &image_missing);
  if (image.ok()) return true;
  if (image_missing) return false;
  return image.status();
}

}  // namespace cowsnap
