# cow_bench throughput relative to 0 snapshots, 4 KiB chunks, per workload
# and concurrency: one bar per snapshot count.
load plotdir."/common.gnuplot"
set title "Throughput relative to 0 snapshots, 4 KiB chunks (cow_bench, same run)"
set ylabel "× 0-snapshot throughput (log)"
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30
set key top right
f = datadir."/cow_ratio.dat"
ncols = int(system("awk -F'\t' 'NR==2{print NF; exit}' ".f))
plot for [c=2:ncols] f using c:xtic(1) title columnhead(c), 1 with lines dt 2 lc rgb "#555555" notitle
