# Write amplification vs number of snapshots: 4 KiB random first writes,
# 4 KiB chunks (cow_bench), one line per mode and concurrency, with the
# floor (N + 1 + N/256) and the targets (sync N + 1.1, write-back N + 1 + N/128).
load plotdir."/common.gnuplot"
set title "Write amplification, 4 KiB random first writes, 4 KiB chunks (cow_bench)"
set xlabel "snapshots"
set ylabel "backing bytes written / client bytes"
set xtics (0, 1, 2, 4, 8)
set key top left
f = datadir."/wa_snapshots.dat"
# Columns: snapshots, one per concurrency (sync), one per concurrency
# (write-back), floor, sync target, write-back target.
ncols = int(system("awk -F'\t' 'NR==2{print NF; exit}' ".f))
plot for [c=2:ncols-3] f using 1:c with linespoints lw 2 pt 7 title columnhead(c), \
     f using 1:(column(ncols-2)) with lines dt 2 lc rgb "#555555" title "floor N+1+N/256", \
     f using 1:(column(ncols-1)) with lines dt 3 lw 2 lc rgb "#cc0000" title "target (sync) N+1.1", \
     f using 1:(column(ncols)) with lines dt 4 lw 2 lc rgb "#0000cc" title "target (wb) N+1+N/128"
