# Write amplification vs chunk size with one snapshot (cow_bench).
load plotdir."/common.gnuplot"
set title "Write amplification vs chunk size, 1 snapshot (cow_bench)"
set xlabel "chunk size (KiB)"
set ylabel "backing bytes written / client bytes"
set logscale xy 2
set xrange [3:700]
set xtics (4, 16, 64, 512)
f = datadir."/wa_chunk.dat"
plot f using 1:2 with linespoints lw 2 pt 7 title "rand4k-first", \
     f using 1:3 with linespoints lw 2 pt 5 title "seq1m", \
     f using 1:4 with linespoints lw 2 pt 9 title "rand4k-copied"
