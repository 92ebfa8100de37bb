"""The working-day calendar as data: each year's State Council arrangement and the STA's filing deadlines,
imported from the published notices (`chunfeng calendar import`) and shown to officials (/calendar)."""
