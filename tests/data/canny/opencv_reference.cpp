/*
 * How the expected maps here were made (not built by the project): with
 * Debian's libopencv-imgproc-dev,
 *   g++ -O2 opencv_reference.cpp -o ref -I/usr/include/opencv4 -lopencv_imgproc -lopencv_core
 *   ./ref scene1.ppm 50 150
 * writes scene1.blur.pgm (cvtColor RGB2GRAY + GaussianBlur 5x5 sigma 0)
 * and scene1.50-150.pgm (Canny on that, L2 gradient).
 */
#include <cstdio>
#include <cstdlib>
#include <string>
#include <opencv2/imgproc/imgproc.hpp>

static cv::Mat
read_ppm(const char *path)
{
	FILE *f = fopen(path, "rb");
	int w, h, max;

	if (f == NULL || fscanf(f, "P6 %d %d %d", &w, &h, &max) != 3)
		exit(1);
	fgetc(f);
	cv::Mat m(h, w, CV_8UC3);
	if (fread(m.data, 3, (size_t)w * h, f) != (size_t)w * h)
		exit(1);
	fclose(f);
	return m;
}

static void
write_pgm(const std::string &path, const cv::Mat &m)
{
	FILE *f = fopen(path.c_str(), "wb");

	fprintf(f, "P5\n%d %d\n255\n", m.cols, m.rows);
	fwrite(m.data, 1, (size_t)m.cols * m.rows, f);
	fclose(f);
}

int
main(int argc, char **argv)
{
	cv::Mat rgb = read_ppm(argv[1]), gray, blur, edges;
	std::string base(argv[1]);

	base = base.substr(0, base.size() - 4);
	cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
	cv::GaussianBlur(gray, blur, cv::Size(5, 5), 0);
	cv::Canny(blur, edges, atof(argv[2]), atof(argv[3]), 3, true);
	write_pgm(base + ".blur.pgm", blur);
	write_pgm(base + "." + argv[2] + "-" + argv[3] + ".pgm", edges);
	return 0;
}
