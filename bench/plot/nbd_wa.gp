# NBD servers: write amplification measured identically for every server
# (wchar of the server process / bytes fio wrote).
load plotdir."/common.gnuplot"
set title "fio over NBD: write amplification (server wchar / bytes written by fio)"
set ylabel "write amplification (log)"
set logscale y
set yrange [0.5:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
f = datadir."/nbd_wa.dat"
plot for [c=2:4] f using c:xtic(1) title columnhead(c)
