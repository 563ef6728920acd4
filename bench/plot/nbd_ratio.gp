# NBD servers: fio throughput relative to nbdkit's file plugin (same run).
load plotdir."/common.gnuplot"
set title "fio over NBD: throughput relative to nbdkit's file plugin (same run, medians)"
set ylabel "× file plugin (log)"
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
f = datadir."/nbd_ratio.dat"
plot for [c=2:6] f using c:xtic(1) title columnhead(c), 1 with lines dt 2 lc rgb "#555555" notitle
