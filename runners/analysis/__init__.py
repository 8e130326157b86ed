"""From records to answers: the experiment view, the statistics, the verdict, the tables and the plots."""
