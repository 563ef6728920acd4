# Shared by every plot: a PNG terminal (pngcairo when this gnuplot has it,
# else libgd's png), the data conventions and the house style.
# Each plot script is run as:
#   gnuplot -e "plotdir='bench/plot'; datadir='DIR'; outfile='FILE.png'" SCRIPT
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 960,560 enhanced font "DejaVu Sans,11"
} else {
  set terminal png size 960,560
}
set output outfile
set termoption noenhanced
set datafile missing "NaN"
set datafile separator "\t"
set key autotitle columnhead
set grid ytics lc rgb "#dddddd"
set key top left box opaque
set border 3
set tics nomirror
