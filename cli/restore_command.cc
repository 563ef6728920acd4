// `cowsnap restore DIR [--at NAME|TIME] DEST`: rebuilds a backup's image
// (its full backup, then each incremental of its chain in order) into a
// file or, through the running server, into an LV; and `cowsnap changed
// VG/SNAP`: the chunks a snapshot's origin changed since it was taken.
//
// Restore checks before it writes and after: every file of the chain is
// re-read against its digests first (a damaged backup is refused, named by
// file and chunk), and the rebuilt image is read back and compared with the
// target backup's digest of every chunk.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>

#include "backup/image_files.h"
#include "backup/manifest.h"
#include "command.h"
#include "cowsnap/io/devices.h"
#include "cowsnap/vg/root.h"
#include "hot_backup.h"

namespace cowsnap::cli {

using backup::ChunkRun;
using backup::Manifest;
using nlohmann::json;

namespace {

constexpr uint64_t kCopyBytes = uint64_t{1} << 20;

struct RestoreArgs {
  std::string dir;
  std::string at;
  std::string dest;
  bool quiet = false;
  NbdArgs nbd;
};

// Where the image goes: a file, or an LV's export.
class Destination {
 public:
  virtual ~Destination() = default;
  virtual Status write(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Status zero(uint64_t offset, uint64_t length) = 0;
  virtual Status read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual Status flush() = 0;
  // A fresh file reads zeroes already; an LV does not.
  [[nodiscard]] virtual bool starts_zeroed() const = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
};

class FileDestination final : public Destination {
 public:
  static Result<std::unique_ptr<FileDestination>> open(const std::string& path, uint64_t size) {
    struct stat st {};
    const bool block = ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (block ? 0 : O_TRUNC), 0644);
    if (fd < 0) return Status::FromErrno(fmt::format("cannot open {}", path));
    auto d = std::unique_ptr<FileDestination>(new FileDestination(fd, path, block));
    if (!block && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(fmt::format("cannot size {}", path));
    }
    return d;
  }
  ~FileDestination() override { ::close(fd_); }
  FileDestination(const FileDestination&) = delete;
  FileDestination& operator=(const FileDestination&) = delete;
  Status write(uint64_t offset, std::span<const uint8_t> data) override {
    return backup::write_all(fd_, offset, data, path_);
  }
  Status zero(uint64_t offset, uint64_t length) override {
    const std::vector<uint8_t> zeroes(std::min(length, kCopyBytes), 0);
    for (uint64_t done = 0; done < length;) {
      const uint64_t n = std::min<uint64_t>(zeroes.size(), length - done);
      COWSNAP_RETURN_IF_ERROR(write(offset + done, std::span(zeroes.data(), n)));
      done += n;
    }
    return Status::Ok();
  }
  Status read(uint64_t offset, std::span<uint8_t> data) override {
    return backup::read_all(fd_, offset, data, path_);
  }
  Status flush() override {
    if (::fsync(fd_) != 0) return Status::FromErrno(fmt::format("fsync {}", path_));
    return Status::Ok();
  }
  [[nodiscard]] bool starts_zeroed() const override { return !block_; }
  [[nodiscard]] std::string describe() const override { return path_; }

 private:
  FileDestination(int fd, std::string path, bool block) : fd_(fd), path_(std::move(path)), block_(block) {}
  int fd_;
  std::string path_;
  bool block_;
};

class LvDestination final : public Destination {
 public:
  explicit LvDestination(std::unique_ptr<backup::NbdConnection> c, std::string name)
      : c_(std::move(c)), name_(std::move(name)) {}
  Status write(uint64_t offset, std::span<const uint8_t> data) override { return c_->pwrite(offset, data); }
  Status zero(uint64_t offset, uint64_t length) override { return c_->zero(offset, length); }
  Status read(uint64_t offset, std::span<uint8_t> data) override { return c_->pread(offset, data); }
  Status flush() override { return c_->flush(); }
  [[nodiscard]] bool starts_zeroed() const override { return false; }
  [[nodiscard]] std::string describe() const override { return "LV " + name_; }

 private:
  std::unique_ptr<backup::NbdConnection> c_;
  std::string name_;
};

// DEST is an LV when a running server serves one by that name (VG/LV or
// /dev/VG/LV); anything else is a file.
Result<std::unique_ptr<Destination>> open_destination(const std::string& root, const RestoreArgs& args,
                                                      const Manifest& target) {
  auto [vg_name, lv_name] = split_lv_path(args.dest);
  if (!vg_name.empty() && !lv_name.empty() && control::Client::server_running(root) &&
      ::access(args.dest.c_str(), F_OK) != 0) {
    COWSNAP_ASSIGN_OR_RETURN(control::Client client, connect_server(root, "restore"));
    auto lv = find_lv(client, vg_name, lv_name);
    if (lv.ok()) {
      if (lv->size_bytes < target.size_bytes) {
        return Status::Error(ENOSPC, fmt::format("LV {}/{} is {} bytes, smaller than the backup's {}",
                                                 vg_name, lv_name, lv->size_bytes, target.size_bytes));
      }
      if (lv->open_connections > 0) {
        return Status::Error(
            EBUSY, fmt::format("LV {}/{} is in use ({} NBD clients connected): disconnect them first",
                               vg_name, lv_name, lv->open_connections));
      }
      COWSNAP_ASSIGN_OR_RETURN(
          auto c, backup::NbdConnection::open(nbd_address(root, args.nbd), vg_name + "/" + lv_name));
      return std::unique_ptr<Destination>(new LvDestination(std::move(c), vg_name + "/" + lv_name));
    }
  }
  COWSNAP_ASSIGN_OR_RETURN(auto file, FileDestination::open(vg::absolute_path(args.dest), target.size_bytes));
  return std::unique_ptr<Destination>(std::move(file));
}

// Copies the data runs of a full image; its holes read as zeroes.
Status copy_full_image(const std::string& path, uint64_t size, Destination& dest) {
  COWSNAP_ASSIGN_OR_RETURN(auto image, FileDevice::open(path, {.read_only = true}));
  ExtentMap map;
  COWSNAP_RETURN_IF_ERROR(image->extents(0, size, map));
  std::vector<uint8_t> buf(kCopyBytes);
  uint64_t pos = 0;
  for (const ExtentMap::Run& run : map.runs()) {
    const uint64_t end = pos + run.length;
    if (run.zero) {
      if (!dest.starts_zeroed()) COWSNAP_RETURN_IF_ERROR(dest.zero(pos, run.length));
      pos = end;
      continue;
    }
    for (; pos < end;) {
      const std::span<uint8_t> piece(buf.data(), std::min<uint64_t>(buf.size(), end - pos));
      COWSNAP_RETURN_IF_ERROR(image->read(pos, piece));
      COWSNAP_RETURN_IF_ERROR(dest.write(pos, piece));
      pos += piece.size();
    }
  }
  return Status::Ok();
}

// Writes a delta's packed chunks at their places in the image.
Status apply_delta(const std::string& path, const Manifest& m, Destination& dest) {
  COWSNAP_ASSIGN_OR_RETURN(auto delta, FileDevice::open(path, {.read_only = true}));
  std::vector<uint8_t> buf;
  uint64_t packed = 0;  // chunks of the delta before this run
  for (const ChunkRun& r : m.changed) {
    for (uint64_t done = 0; done < r.count;) {
      const uint64_t n =
          std::min<uint64_t>(r.count - done, std::max<uint64_t>(1, kCopyBytes / m.chunk_bytes));
      const uint64_t first = r.first + done;
      const uint64_t bytes = std::min(m.size_bytes, (first + n) * m.chunk_bytes) - first * m.chunk_bytes;
      buf.resize(bytes);
      COWSNAP_RETURN_IF_ERROR(delta->read((packed + done) * m.chunk_bytes, buf));
      COWSNAP_RETURN_IF_ERROR(dest.write(first * m.chunk_bytes, buf));
      done += n;
    }
    packed += r.count;
  }
  return Status::Ok();
}

int restore_command(Context& ctx, const RestoreArgs& args) {
  const std::string root = vg::absolute_path(ctx.root_dir());
  const std::string dir = vg::absolute_path(args.dir);
  auto backups = backup::list_backups(dir);
  if (!backups.ok()) return fail(backups.status());
  auto target = backup::pick_backup(*backups, args.at);
  if (!target.ok()) return fail(target.status().with_context(dir));
  auto chain = backup::chain_of(*backups, target->name);
  if (!chain.ok()) return fail(chain.status());
  for (const Manifest& m : *chain) {
    if (m.size_bytes != target->size_bytes || m.chunk_bytes != target->chunk_bytes) {
      return fail(Status::Error(
          EINVAL, fmt::format("backup {} does not match its chain's size or chunk size", m.name)));
    }
    auto problems = backup::verify_backup(dir + "/" + m.name, m);
    if (!problems.ok()) return fail(problems.status());
    if (!problems->empty()) {
      for (const std::string& p : *problems) complain(p);
      return fail(
          Status::Error(EIO, fmt::format("Backup {} is damaged: not restoring {}", m.name, target->name)));
    }
  }
  auto dest = open_destination(root, args, *target);
  if (!dest.ok()) return fail(dest.status());
  Destination& d = **dest;
  for (const Manifest& m : *chain) {
    const std::string path = dir + "/" + m.name + "/" + m.data_file();
    Status s = m.incremental ? apply_delta(path, m, d) : copy_full_image(path, m.size_bytes, d);
    if (!s.ok()) return fail(s.with_context(fmt::format("restoring {} into {}", m.name, d.describe())));
  }
  if (Status s = d.flush(); !s.ok()) return fail(s);
  // Read back: the image must be the target backup's, chunk by chunk.
  std::vector<uint8_t> buf(std::max<uint64_t>(1, kCopyBytes / target->chunk_bytes) * target->chunk_bytes);
  for (uint64_t c = 0; c < target->chunk_count();) {
    const uint64_t n = std::min<uint64_t>(target->chunk_count() - c, buf.size() / target->chunk_bytes);
    const uint64_t bytes =
        std::min(target->size_bytes, (c + n) * target->chunk_bytes) - c * target->chunk_bytes;
    std::span<uint8_t> piece(buf.data(), bytes);
    if (Status s = d.read(c * target->chunk_bytes, piece); !s.ok()) return fail(s);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t len = target->chunk_length(c + i);
      if (!backup::same_digest(backup::digest_of(piece.subspan(i * target->chunk_bytes, len)),
                               target->digests[c + i])) {
        return fail(Status::Error(EIO, fmt::format("{}: chunk {} does not match backup {} after the restore",
                                                   d.describe(), c + i, target->name)));
      }
    }
    c += n;
  }
  say(fmt::format(
      "Restored backup {} of {}/{} ({}) into {}: {} bytes, every chunk matches its digest", target->name,
      target->vg, target->lv,
      chain->size() == 1 ? std::string("full") : fmt::format("full + {} incrementals", chain->size() - 1),
      d.describe(), target->size_bytes));
  return kExitOk;
}

struct ChangedArgs {
  std::string lv_path;
  bool json = false;
};

int changed_command(Context& ctx, const ChangedArgs& args) {
  const std::string root = vg::absolute_path(ctx.root_dir());
  auto [vg_name, lv_name] = split_lv_path(args.lv_path);
  if (vg_name.empty() || lv_name.empty()) {
    return fail(Status::Error(EINVAL, fmt::format("\"{}\": give the snapshot as VG/LV", args.lv_path)));
  }
  auto client = connect_server(root, "changed");
  if (!client.ok()) return fail(client.status());
  auto r = client->changed(vg_name, lv_name);
  if (!r.ok()) return fail(r.status());
  const uint64_t chunk = r->body.value("chunk_bytes", uint64_t{0});
  if (args.json) {
    json ranges = json::array();
    for (const json& run : r->body.at("runs")) {
      ranges.push_back(
          {{"offset", run.at(0).get<uint64_t>() * chunk}, {"length", run.at(1).get<uint64_t>() * chunk}});
    }
    const json out = {{"vg", vg_name},
                      {"lv", lv_name},
                      {"origin", r->body.value("origin", "")},
                      {"size_bytes", r->body.value("size_bytes", uint64_t{0})},
                      {"chunk_bytes", chunk},
                      {"changed_chunks", r->body.value("changed_chunks", uint64_t{0})},
                      {"changed_bytes", r->body.value("changed_chunks", uint64_t{0}) * chunk},
                      {"ranges", ranges}};
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  // One range per line, in bytes: offset and length.
  fmt::print("  {:>14} {:>14}\n", "Offset", "Length");
  for (const json& run : r->body.at("runs")) {
    fmt::print("  {:>14} {:>14}\n", run.at(0).get<uint64_t>() * chunk, run.at(1).get<uint64_t>() * chunk);
  }
  return kExitOk;
}

}  // namespace

void register_restore_commands(CLI::App& app, CommandTable& table) {
  auto args = std::make_shared<RestoreArgs>();
  CLI::App* cmd =
      app.add_subcommand("restore", "Rebuild a backup (and its chain of incrementals) into a file or an LV");
  cmd->add_option("DIR", args->dir, "The backup directory")->required();
  cmd->add_option("DEST", args->dest, "A file, or VG/LV of the running server")->required();
  cmd->add_option("--at", args->at, "The backup to restore: its name, or a UTC time (default: the newest)");
  add_nbd_options(cmd, args->nbd);
  table.add(cmd, [args](Context& ctx) { return restore_command(ctx, *args); });

  auto changed = std::make_shared<ChangedArgs>();
  CLI::App* c =
      app.add_subcommand("changed", "The ranges a snapshot's origin changed since the snapshot was taken");
  c->add_option("SNAPSHOT", changed->lv_path, "The snapshot, VG/LV")->required();
  c->add_flag("--json", changed->json, "JSON instead of text");
  table.add(c, [changed](Context& ctx) { return changed_command(ctx, *changed); });
}

}  // namespace cowsnap::cli
