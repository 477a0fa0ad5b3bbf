from fooling.cli import main

main(prog_name="fool")
