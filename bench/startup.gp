# Failing start-up syscalls vs run-path directories, stock vs noted (bench/run.sh).
#   gnuplot -e "datafile='bench/out/startup.dat'; outfile='docs/startup.svg'" bench/startup.gp
# Columns: dirs, stock failing, noted failing, 1 if the noted value is the simulator's.
set terminal svg size 720,440 dynamic font "sans,12" background rgb "white"
set output outfile
set title "Failing file syscalls at program start (N libraries from N run-path directories)"
set xlabel "run-path directories (= needed libraries)"
set ylabel "failing openat/stat/access calls (log scale)"
set logscale xy
set xrange [7:230]
set yrange [0.5:*]
set xtics ("10" 10, "40" 40, "160" 160)
set grid ytics
set key top left
set style line 1 lc rgb "#c0392b" lw 2 pt 7 ps 1.2
set style line 2 lc rgb "#2471a3" lw 2 pt 5 ps 1.2
plot datafile using 1:2 with linespoints ls 1 title "stock glibc 2.36 loader", \
     datafile using 1:2:(sprintf("%d", $2)) with labels offset 0,1 notitle, \
     datafile using 1:3 with linespoints ls 2 title "note-aware loader + ldnote note", \
     datafile using 1:3:(sprintf("%d", $3)) with labels offset 0,-1 notitle
