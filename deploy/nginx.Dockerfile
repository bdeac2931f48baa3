# nginx in front of dfs: proxies every path to the app service (which serves the web app too) and
# sends X-Accel-Redirect downloads from node directories mounted into it.
FROM nginx:1.27-alpine
COPY deploy/nginx.conf /etc/nginx/conf.d/default.conf
