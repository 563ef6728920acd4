// lvm2's attribute strings: lv_attr (10 characters), vg_attr (6), pv_attr (3).
#pragma once

#include <optional>
#include <string>

#include "cowsnap/store/exception_store.h"
#include "cowsnap/vg/vg_model.h"

namespace cowsnap::report {

// What the metadata alone cannot say about an LV: whether a server serves
// it and whether a client has it open; for a snapshot, its store's validity
// and usage (usage empty: unknown, Data% stays blank).
struct LvLiveState {
  bool active = false;
  bool open = false;
  bool snapshot_valid = true;
  std::optional<StoreUsage> usage;
  // A snapshot whose store cannot be read ("Failed to read snapshot
  // metadata: ..."), "" otherwise. Active (served): its device exists
  // without a table, as a failed dm load leaves it.
  std::string failure;
  // An origin whose snapshot-merge target runs (and, reported with its
  // origin's state, the merging snapshot): `usage` is the merging store's.
  bool merging = false;
  bool merge_failed = false;
  // A served snapshot's monitoring (lvchange --monitor); empty when not
  // served.
  std::optional<bool> monitored = std::nullopt;
};

// Characters, in lvm2's order:
//  1 type: o origin, O origin of a merging snapshot, s snapshot, S merging
//    snapshot, - plain
//  2 permissions: w, r
//  3 allocation policy: i (inherit; the only policy cowsnap writes)
//  4 fixed minor: -
//  5 state: a active, I invalid snapshot (shown even offline, since the
//    store says so), d a served snapshot whose store failed to load
//    (lvm2's "mapped device present without tables"), - inactive
//  6 open: o, -
//  7 target type: s for origins and snapshots, - otherwise
//  8 zero: -   9 health: -   10 skip activation: -
std::string lv_attr(const vg::VolumeGroup& vg, const vg::LogicalVolume& lv, const LvLiveState& live);
// w/r, z (resizeable), exported -, partial p/-, allocation n, clustered -.
std::string vg_attr(const vg::VolumeGroup& vg, bool partial = false);
// a (allocatable, in a VG) or -, exported -, missing m/-.
std::string pv_attr(const vg::PhysicalVolume* pv_in_vg, bool missing = false);

}  // namespace cowsnap::report
